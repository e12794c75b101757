"""Learning-rate schedules that step with every optimizer step: warm-up, then a decay.

``lr_scheduler: {class_path: seqkit.WarmupDecay, init_args: {...}}`` in YAML. LightningCLI steps
a scheduler once per epoch unless told otherwise; seqkit's CLI steps any scheduler with
``interval = "step"`` (these) after every optimizer step, as OpenNMT-py and fairseq do.

The factor that multiplies the optimizer's ``lr`` at step s (counted from 1), with warm-up W:

* warm-up: ``s / W`` for s < W (linear, Goyal et al. 2017), then the decay;
* ``none``: 1;
* ``rsqrt``: ``sqrt(W / s)`` (Vaswani et al. 2017's "noam" shape, OpenNMT-py's rsqrt);
* ``linear`` / ``cosine``: down to ``min_ratio`` at ``total_steps``, then flat;
* ``exp``: ``rate ** floor((s - start) / every)`` from step ``start`` (OpenNMT-py's default RNN
  schedule: learning_rate_decay, start_decay_steps, decay_steps).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from seqkit.errors import SeqkitError

Decay = Literal["none", "rsqrt", "linear", "cosine", "exp"]


def lr_factor(step: int, warmup_steps: int = 0, decay: Decay = "none", total_steps: Optional[int] = None,
              min_ratio: float = 0.0, rate: float = 0.5, start: int = 0, every: int = 1000) -> float:
    """The multiplier of the base learning rate at optimizer step ``step`` (1-based)."""
    s = max(1, step)
    if warmup_steps and s < warmup_steps:
        return s / warmup_steps
    if decay == "none":
        return 1.0
    if decay == "rsqrt":
        return math.sqrt(max(1, warmup_steps) / s)
    if decay == "exp":
        return rate ** max(0, (s - start) // every) if s >= start else 1.0
    done = min(1.0, (s - warmup_steps) / max(1, (total_steps or 1) - warmup_steps))
    shape = 1.0 - done if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
    return min_ratio + (1.0 - min_ratio) * shape


class WarmupDecay(LambdaLR):
    """Linear warm-up over ``warmup_steps`` optimizer steps, then ``decay`` (see the module)."""

    interval = "step"

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        decay: Decay = "none",
        total_steps: Optional[int] = None,
        min_ratio: float = 0.0,
        rate: float = 0.5,
        start: int = 0,
        every: int = 1000,
        last_epoch: int = -1,
    ) -> None:
        """
        Args:
            optimizer: The optimizer (passed by the CLI).
            warmup_steps: Steps of linear warm-up from 0 to the optimizer's lr.
            decay: "none", "rsqrt", "linear", "cosine" or "exp".
            total_steps: Where linear and cosine reach min_ratio (e.g. trainer.max_steps).
            min_ratio: The smallest factor of linear and cosine.
            rate: exp: the factor applied every ``every`` steps from ``start``.
            start: exp: the step the decay starts.
            every: exp: steps between two decays.
        """
        where = "lr_scheduler.init_args"
        if warmup_steps < 0:
            raise SeqkitError(f"{where}.warmup_steps must be >= 0, got {warmup_steps}")
        if decay not in ("none", "rsqrt", "linear", "cosine", "exp"):
            raise SeqkitError(f"{where}.decay: unknown {decay!r}; choose none, rsqrt, linear, cosine or exp")
        if decay in ("linear", "cosine") and (total_steps is None or total_steps <= warmup_steps):
            raise SeqkitError(f"{where}.total_steps must be set above warmup_steps for decay {decay} "
                              f"(got {total_steps})")
        if not 0.0 <= min_ratio <= 1.0 or not 0.0 < rate <= 1.0 or every < 1 or start < 0:
            raise SeqkitError(f"{where}: min_ratio must be in [0, 1], rate in (0, 1], every >= 1 and start >= 0")
        args = dict(warmup_steps=warmup_steps, decay=decay, total_steps=total_steps, min_ratio=min_ratio,
                    rate=rate, start=start, every=every)
        # LambdaLR calls the function with the number of steps taken (0 first): step s = n + 1
        super().__init__(optimizer, lambda n: lr_factor(n + 1, **args), last_epoch)
