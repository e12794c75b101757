"""Many-to-one head: one prediction per sequence, from the last state or a length-masked mean.

Classification when the data has classes (cross-entropy; accuracy and macro-F1), regression when
it has targets (mean squared error; MAE and RMSE).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqkit import Batch, Encoded, Head, SeqkitError, Spec, length_mask


class ManyToOneHead(Head):
    """Pools the stack's outputs over time and maps them to classes or regression targets."""

    prediction_format = "csv"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        pooling: Literal["last", "mean"] = "last",
        hidden_size: int = 0,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            pooling: "last": the final state (both directions' finals when bidirectional);
                "mean": the mean over the real (unpadded) steps.
            hidden_size: If > 0, a hidden layer (tanh) before the output layer.
            dropout: Dropout before the output layer.
        """
        super().__init__(spec, input_size)
        if spec.num_classes <= 0 and spec.num_targets <= 0:
            raise SeqkitError("ManyToOneHead needs data with classes (num_classes) or regression targets (num_targets)")
        self.pooling = pooling
        self.classify = spec.num_classes > 0
        out = spec.num_classes if self.classify else spec.num_targets
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size > 0:
            layers += [nn.Linear(input_size, hidden_size), nn.Tanh(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_size or input_size, out))
        self.proj = nn.Sequential(*layers)
        if self.classify:
            n = spec.num_classes
            self.set_metrics(MetricCollection({
                "acc": MulticlassAccuracy(n, average="micro"),
                "f1": MulticlassF1Score(n, average="macro"),
            }))
        else:
            self.set_metrics(MetricCollection({"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)}))

    def pool(self, encoded: Encoded, model) -> torch.Tensor:
        out, lengths = encoded.outputs, encoded.lengths  # (B, T, D), (B,)
        B, T, D = out.shape
        if lengths is None:
            lengths = torch.full((B,), T, device=out.device, dtype=torch.long)
        lengths = lengths.to(out.device)
        if self.pooling == "mean":
            mask = length_mask(lengths, T).unsqueeze(-1).to(out.dtype)  # (B, T, 1)
            return (out * mask).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(out.dtype)
        rnn = getattr(model, "rnn", None)
        if encoded.state is not None and rnn is not None and hasattr(rnn, "num_directions"):
            from seqkit import final_hidden

            return final_hidden(encoded.state, rnn.num_layers, rnn.num_directions)  # (B, D)
        return out[torch.arange(B, device=out.device), (lengths - 1).clamp(min=0)]  # (B, D)

    def forward(self, encoded: Encoded, batch: Batch, model=None) -> torch.Tensor:
        return self.proj(self.pool(encoded, model))  # (B, classes) or (B, targets)

    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        pred = self(model.encode(batch), batch, model)
        metrics = self.metrics(stage)
        if self.classify:
            loss = F.cross_entropy(pred, batch.targets)
            metrics.update(pred.argmax(-1), batch.targets)
        else:
            target = batch.targets.view_as(pred).to(pred.dtype)
            loss = F.mse_loss(pred, target)
            metrics.update(pred.detach().flatten(), target.flatten())
        return loss

    def predict(self, model, batch: Batch) -> list[dict]:
        pred = self(model.encode(batch), batch, model)
        records = []
        # a data module may name each input (the text, a file id) in batch.extra["input"]
        inputs = batch.extra.get("input") or [None] * len(batch.index)
        if self.classify:
            probs = pred.softmax(-1).cpu()
            names = self.spec.extra.get("labels") or [str(i) for i in range(self.spec.num_classes)]
            for i, p, x in zip(batch.index.tolist(), probs, inputs):
                rec = {"index": i} if x is None else {"index": i, "input": x}
                rec["label"] = names[int(p.argmax())]
                rec.update({f"p_{name}": round(float(v), 6) for name, v in zip(names, p)})
                records.append(rec)
        else:
            for i, row, x in zip(batch.index.tolist(), pred.cpu(), inputs):
                rec = {"index": i} if x is None else {"index": i, "input": x}
                rec.update({f"y{k}": float(v) for k, v in enumerate(row)})
                records.append(rec)
        return records
