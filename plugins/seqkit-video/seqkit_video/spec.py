"""The video plugin's typed task facts: ``VideoSpec`` (what the model must know about the clips)
and ``VideoBatch`` (a padded batch of clips that also knows each step's frame number).

``VideoClipData`` gives a ``VideoSpec``; the frame encoders read ``frame_shape`` from it and
``PerFrameHead`` reads ``window`` and ``overlap``, the grid it cuts whole clips on. Labels travel
in the core's ``Spec.labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from seqkit import Batch, Spec

IGNORE = -100
"""Target id of frames without a label: padding, and clips predicted without a label file."""


@dataclass
class VideoSpec(Spec):
    """A :class:`seqkit.Spec` for clips with one label per frame."""

    input_kind: str = "frames"
    """Every step of the input is one frame (C, H, W)."""
    frame_shape: list[int] = field(default_factory=list)
    """(C, H, W) of every frame once converted (``channels``) and resized (``frame_size``)."""
    window: int = 0
    """Frames per training window. Evaluation and predict cut whole clips longer than this on the
    same grid and stitch the windows back; 0: whole clips everywhere."""
    overlap: int = 0
    """Frames shared by consecutive windows (``window - overlap`` is the stride)."""


@dataclass
class VideoBatch(Batch):
    """A padded batch of clips or training windows; ``names`` are the clip names."""

    frame_numbers: Optional[torch.Tensor] = None
    """(B, T) the number of each step's frame in its clip file, counted from 0 (with
    ``frame_stride`` k the steps are frames 0, k, 2k, ...; a training window starts where it was
    cut); -1 on padding. Truncated BPTT cuts it with the inputs."""
