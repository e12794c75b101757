"""DigitSumHead: the sum of a digit sequence from the LSTM's final state (many-to-one regression).

The network predicts the sum divided by ``spec.extra["scale"]`` (9 x the longest training
sequence), so its target lies in [0, 1] whatever the sequence length; predictions are scaled back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, Metric, MetricCollection

from seqkit import Batch, Encoded, Head, SeqkitError, Spec, final_hidden


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
    """Final LSTM state -> one number: the sum of the digits."""

    prediction_format = "csv"

    def __init__(self, spec: Spec, input_size: int, hidden_size: int = 0) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            hidden_size: If > 0, a hidden layer (tanh) before the output.
        """
        super().__init__(spec, input_size)
        if spec.num_targets != 1 or "scale" not in spec.extra:
            raise SeqkitError("DigitSumHead needs DigitSumData (one regression target and spec.extra['scale'])")
        self.scale = float(spec.extra["scale"])
        layers: list[nn.Module] = []
        if hidden_size > 0:
            layers += [nn.Linear(input_size, hidden_size), nn.Tanh()]
        layers.append(nn.Linear(hidden_size or input_size, 1))
        self.out = nn.Sequential(*layers)
        self.set_metrics(MetricCollection({"mae": MeanAbsoluteError(), "exact": ExactSum()}))

    def forward(self, encoded: Encoded, batch: Batch, model=None) -> torch.Tensor:
        """The scaled sum of each sequence: (B,)."""
        rnn = getattr(model, "rnn", None)
        if encoded.state is not None and hasattr(rnn, "num_directions"):
            h = final_hidden(encoded.state, rnn.num_layers, rnn.num_directions)  # (B, D)
        else:  # another recurrent stack: the output at each sequence's last real step
            out, lengths = encoded.outputs, encoded.lengths  # (B, T, D), (B,)
            h = out[torch.arange(out.shape[0], device=out.device), (lengths.to(out.device) - 1).clamp(min=0)]
        return self.out(h).squeeze(-1)  # (B,)

    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        pred = self(model.encode(batch), batch, model)  # (B,) scaled
        target = batch.targets.to(pred.dtype)
        self.metrics(stage).update(pred.detach().float() * self.scale, target.float())
        return F.mse_loss(pred, target / self.scale)

    def predict(self, model, batch: Batch) -> list[dict]:
        sums = (self(model.encode(batch), batch, model).float() * self.scale).cpu()  # (B,)
        vocab = self.spec.vocabs["digits"]
        records = []
        for row, n, i, s in zip(batch.inputs.cpu().tolist(), batch.lengths.tolist(), batch.index.tolist(), sums.tolist()):
            records.append({"index": i, "digits": "".join(vocab.decode(row[:n])), "sum": round(s, 3), "rounded": round(s)})
        return records
