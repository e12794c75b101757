"""What the one-to-many data modules give ``OneToManyHead``: ``OneToManySpec`` (vector to
sequence), ``CaptionSpec`` (images to captions) and ``OneToManyBatch``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from seqkit import Batch, Spec, Tokenizer

# ImageNet statistics: the usual choice, and what torchvision backbones expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class OneToManySpec(Spec):
    """A spec for writing a token sequence from one input: the output vocabulary is
    ``vocabs["target"]``."""

    max_target_len: int = 30
    """Most tokens the decoder writes unless the head says otherwise (the longest training
    target + <eos>)."""
    tokenizer: Optional[Tokenizer] = None
    """Joins output tokens into text (None: with spaces)."""
    source_field: str = "input"
    """Name of the input's column in prediction records (its ``batch.names`` entry)."""
    target_field: str = "output"
    """Name of the generated text's column in prediction records."""


@dataclass
class CaptionSpec(OneToManySpec):
    """A spec for image captioning: images (B, 3, H, W), normalised with ``mean`` and ``std``."""

    image_size: tuple[int, int] = (32, 64)
    """(height, width) every image is resized to."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    """Per-channel mean subtracted after scaling pixels to [0, 1]."""
    std: tuple[float, float, float] = IMAGENET_STD
    """Per-channel deviation divided by after subtracting the mean."""


@dataclass
class OneToManyBatch(Batch):
    """A batch for ``OneToManyHead``: ``targets`` (C, T) are <bos> ... <eos> id rows, C >= B when an
    example brings several (several captions of one image)."""

    references: list[list[str]] = field(default_factory=list)
    """Every reference text of each example (BLEU and exact match compare against all of them)."""
    target_example: Optional[torch.Tensor] = None
    """(C,) the example (0..B-1) each row of ``targets`` belongs to; None: one row per example."""
