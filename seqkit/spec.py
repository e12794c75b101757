"""The two objects that flow between a data module and the model: ``Spec`` and ``Batch``.

A data module publishes a :class:`Spec` (sizes derived from its data: vocabulary, number of
features, classes or targets, the pad id); the CLI links it into the model when both are
instantiated, so no size is ever written twice in YAML. Batches travel as :class:`Batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Spec:
    """What the model must know about the data; filled in by a data module, never by hand."""

    input_kind: str = "tokens"
    """What one time step of the input is: ``tokens`` (ids), ``features`` (a float vector), or a
    kind a plugin's encoder understands (``frames``, ``image``)."""
    input_size: int = 0
    """Vocabulary size for ``tokens``; number of features per step for ``features``."""
    pad_id: int = 0
    """Id used to pad token inputs (ignored for other kinds)."""
    num_classes: int = 0
    """Number of classes for classification heads (0 when not a classification task)."""
    num_targets: int = 0
    """Number of regression outputs for regression heads (0 when not a regression task)."""
    vocabs: dict[str, Any] = field(default_factory=dict)
    """Vocabularies by role (``source``, ``target``, ``labels``); saved in checkpoints by the data module."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Task-specific facts (image shape, horizon, label names) for heads that need them."""


@dataclass
class Batch:
    """A padded batch. Letters used in shapes: B batch, T time steps, F features."""

    inputs: Any
    """(B, T) token ids, (B, T, F) features, or what the task's encoder takes."""
    lengths: torch.Tensor | None = None
    """(B,) true lengths of ``inputs``; positions at or past a length are padding."""
    targets: Any = None
    """(B,) class ids, (B, K) regression targets, (B, T') target tokens, ..."""
    target_lengths: torch.Tensor | None = None
    """(B,) true lengths of sequence targets."""
    index: torch.Tensor | None = None
    """(B,) position of each example in its dataset, so predictions are written in input order."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else a head needs (raw text for metrics, masks, covariates)."""

    @property
    def size(self) -> int:
        if self.lengths is not None:
            return int(self.lengths.shape[0])
        if self.index is not None:
            return int(self.index.shape[0])
        return len(self.inputs)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) boolean mask that is True on real steps and False on padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)
