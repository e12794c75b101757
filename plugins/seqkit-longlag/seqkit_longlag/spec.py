"""The long-time-lag plugin's typed task facts: ``LongLagSpec``, what every data module of the
plugin gives and its heads read - the task and the success criterion of Hochreiter & Schmidhuber
(1997) that decides whether a sequence was "processed correctly"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seqkit import Spec

Criterion = Literal["abs_error", "output_error", "next_symbols", "argmax"]
"""How a sequence counts as processed correctly:

- ``abs_error``: the absolute error of the output at the end is below ``tolerance`` (adding);
- ``output_error``: every softmax output at the end is within ``tolerance`` of its 0/1 target
  (temporal order);
- ``next_symbols``: at every step the possible next symbols are the most active outputs (Reber);
- ``argmax``: at every step the most likely output is the target (copy).
"""

END_CRITERIA = ("abs_error", "output_error")
"""The criteria of one output at the end of a sequence (``LongLagEndHead``)."""
STEP_CRITERIA = ("next_symbols", "argmax")
"""The criteria of an output at every step (``LongLagStepHead``)."""


@dataclass
class LongLagSpec(Spec):
    """A :class:`seqkit.Spec` for the long-time-lag tasks."""

    task: str = ""
    """Which task: ``adding``, ``temporal_order_6a``, ``temporal_order_6b``, ``embedded_reber``, ``copy``."""
    criterion: str = ""
    """The success criterion, one of :data:`Criterion`."""
    tolerance: float = 0.0
    """The criterion's tolerance (``abs_error``: 0.04 in the paper; ``output_error``: 0.3)."""
    output_symbols: list[str] = field(default_factory=list)
    """Names of the per-step outputs, written into predictions (Reber symbols, copy symbols)."""
    seq_len: int = 0
    """The minimal sequence length T (adding problem)."""
    memoryless_loss: float = 0.0
    """The per-step cross-entropy of a net that remembers nothing (copy task): the level a run
    must get below to have learnt anything."""
