"""The objects that flow between a data module, the model and a head: ``Spec``, ``Batch`` and
``Encoded``.

A data module publishes a :class:`Spec`, the facts about its data the model is built from
(vocabulary size, number of features, classes or targets, the pad id); the CLI links it into the
model when both are instantiated, so no size is ever written twice in YAML. Task facts that only
some heads need (a forecast horizon, the image shape, a tokenizer) are typed fields of a ``Spec``
subclass the plugin publishes, never string keys; a head names the spec type it reads in
``Head.spec_type`` and a data module the one it gives in ``SeqDataModule.spec_type``, so a head
paired with data that cannot feed it fails when the model is built, not deep inside a step.

Batches travel as :class:`Batch` (or a plugin's subclass with more fields). The model runs the
encoder and the recurrent stack over ``batch.inputs`` and hands the head an :class:`Encoded`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import torch

State = tuple[torch.Tensor, torch.Tensor]
"""A recurrent state (h, C), each (layers * directions, B, size), shaped like torch.nn.LSTM's."""


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
    labels: list[str] = field(default_factory=list)
    """Class names, in class-id order (written into predictions); empty: the ids themselves."""
    vocabs: dict[str, Any] = field(default_factory=dict)
    """Vocabularies by role (``tokens``, ``source``, ``target``); fitted state of the data module."""
    stateful: bool = False
    """Batches continue each other row by row (:class:`seqkit.StreamChunks`): the model carries the
    recurrent state from one batch to the next, detached, and resets it every epoch."""
    causal: bool = False
    """The targets are the next inputs (a language model): the model refuses a stack that reads
    ahead (bidirectional)."""
    source: str = ""
    """Class name of the data module that built this spec (set by ``SeqDataModule.spec``), so
    errors can name it."""

    def label_names(self) -> list[str]:
        """``labels``, or the class ids as strings when the data has no names."""
        return list(self.labels) if self.labels else [str(i) for i in range(self.num_classes)]


@dataclass
class Batch:
    """A padded batch. Letters used in shapes: B batch, T time steps, F features.

    Plugins add what their heads need as fields of a subclass (``@dataclass class MyBatch(Batch)``);
    truncated BPTT cuts every (B, T, ...) tensor field along time together with the inputs.
    """

    inputs: Any
    """(B, T) token ids, (B, T, F) features, or what the task's encoder takes."""
    lengths: Optional[torch.Tensor] = None
    """(B,) true lengths of ``inputs``; positions at or past a length are padding."""
    targets: Any = None
    """(B,) class ids, (B, K) regression targets, (B, T') target tokens, ..."""
    target_lengths: Optional[torch.Tensor] = None
    """(B,) true lengths of sequence targets; positions at or past one are padding, and a head's
    loss must not count them."""
    index: Optional[torch.Tensor] = None
    """(B,) position of each example in its dataset, so predictions are written in input order."""
    names: Optional[list[str]] = None
    """A name for each example (its text, its file), written into prediction records as ``input``."""
    window: Any = None
    """Set by truncated BPTT on each window it cuts: ``(t0, t1, T)`` for per-step targets (the
    window covers steps t0..t1 of T), ``(starts, width, T)`` for a sequence's last window."""

    @property
    def size(self) -> int:
        if self.lengths is not None:
            return int(self.lengths.shape[0])
        if self.index is not None:
            return int(self.index.shape[0])
        return len(self.inputs)


class Encoded(NamedTuple):
    """What the model hands a head: the encoder and recurrent stack run over ``batch.inputs``."""

    outputs: torch.Tensor
    """(B, T, D) the stack's output at every step (zeros on padding); the encoder's output when
    the model has no stack."""
    lengths: Optional[torch.Tensor]
    """(B,) true lengths (None: every sequence has T steps)."""
    state: Optional[State]
    """Final (h, C) of the stack, shaped like torch.nn.LSTM's; None without a stack."""
    final: torch.Tensor
    """(B, D) one vector per sequence: the last layer's final h of every direction (the forward
    direction at each sequence's own last step, the backward one at its first), or the output at
    the last real step when the stack keeps no state."""


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, T) boolean mask that is True on real steps and False on padding."""
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def last_step(outputs: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, D) the output at each sequence's last real step of (B, T, D) ``outputs``."""
    B, T, _ = outputs.shape
    if lengths is None:
        return outputs[:, -1]
    last = (lengths.to(outputs.device) - 1).clamp(min=0)
    return outputs[torch.arange(B, device=outputs.device), last]
