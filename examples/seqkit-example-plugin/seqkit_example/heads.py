"""DigitSumHead: the sum of a digit sequence from the LSTM's final state (many-to-one regression).

The network predicts the sum divided by ``spec.scale`` (9 x the longest training sequence), so
its target lies in [0, 1] whatever the sequence length; predictions are scaled back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, Metric, MetricCollection

from seqkit import Batch, EncodeFn, Encoded, Head, records_for
from seqkit_example.data import DigitSumSpec


class ExactSum(Metric):
    """Share of sequences whose rounded predicted sum is exactly right (summed over DDP ranks)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += (preds.round() == target).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total.clamp(min=1)


class DigitSumHead(Head):
    """Final state -> one number: the sum of the digits (MSE on the scaled sum; MAE, exact sums)."""

    spec_type = DigitSumSpec  # the model refuses data that gives no scale
    prediction_format = "csv"

    def __init__(self, spec: DigitSumSpec, input_size: int) -> None:
        """
        Args:
            spec: Sizes and the scale from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
        """
        super().__init__(spec, input_size)
        self.out = nn.Linear(input_size, 1)
        self.set_metrics(MetricCollection({"mae": MeanAbsoluteError(), "exact": ExactSum()}))

    def forward(self, encoded: Encoded) -> torch.Tensor:
        return self.out(encoded.final).squeeze(-1)  # (B, D) -> (B,) scaled sums

    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        pred = self(encoded)
        self.metrics(stage).update(pred.detach().float() * self.spec.scale, batch.targets.float())
        return F.mse_loss(pred, batch.targets.to(pred.dtype) / self.spec.scale)

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict]:
        sums = (self(encoded).float() * self.spec.scale).cpu()  # (B,)
        records = records_for(batch)  # {"index": ..., "input": the digits} per example
        for record, s in zip(records, sums.tolist()):
            record.update(sum=round(s, 3), rounded=round(s))
        return records
