"""The task-head contract: a head turns encoded sequences into predictions and owns its loss,
its metrics (one torchmetrics collection per stage) and, where it applies, decoding."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torchmetrics import MetricCollection

from seqkit.spec import Batch, Spec

if TYPE_CHECKING:
    from seqkit.model import SequenceModel

STAGES = ("train", "val", "test")


class Head(nn.Module, ABC):
    """Base class of task heads.

    Subclasses take ``spec`` and ``input_size`` (the size of the LSTM stack's output, or of the
    encoder's when the model has no stack) as their first two arguments; every other argument is
    a hyperparameter chosen in YAML under ``model.head.init_args``. Build every layer in
    ``__init__`` from these sizes (lazy layers break DDP).
    """

    def __init__(self, spec: Spec, input_size: int) -> None:
        super().__init__()
        self.spec = spec
        self.input_size = input_size

    def set_metrics(self, metrics: MetricCollection) -> None:
        """Keep one copy of ``metrics`` per stage as attributes (train_metrics, val_metrics,
        test_metrics), so Lightning moves them to the device and syncs them under DDP."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}_"))

    def metrics(self, stage: str) -> MetricCollection | None:
        return getattr(self, f"{stage}_metrics", None)

    @abstractmethod
    def step(self, model: SequenceModel, batch: Batch, stage: str) -> torch.Tensor:
        """Compute and return the loss of ``batch`` for ``stage`` ("train", "val", "test"),
        updating this stage's metrics; the model logs the loss and the metrics."""

    def predict(self, model: SequenceModel, batch: Batch) -> list[dict[str, Any]]:
        """Return one record per example (a dict including ``index``, the example's position in
        its dataset); prediction writers turn records into files."""
        raise NotImplementedError(f"{type(self).__name__} does not support predict")
