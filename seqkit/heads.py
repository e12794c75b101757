"""Generic heads every plugin may reuse: ``ManyToOneHead`` (one prediction per sequence) and
``PerStepHead`` (one prediction per time step: tagging, per-frame labels).

Both classify when the spec has classes (cross-entropy; accuracy and macro-F1 from torchmetrics)
and regress when it has targets (mean squared error; MAE and RMSE).

Per-step conventions (``PerStepHead``): ``batch.targets`` is (B, T) class ids or (B, T, K)
regression targets aligned with the inputs; steps at or past ``batch.lengths`` are padding (a
data module may pad class targets with any value: the loss never reads them). The loss is the
mean over each sequence's real steps, then over sequences, so every sequence counts the same and
a DDP run averages exactly like one process with the same global batch.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqkit.errors import SeqkitError
from seqkit.head import EncodeFn, Head, records_for
from seqkit.spec import Batch, Encoded, Spec, length_mask


def output_layers(input_size: int, hidden_size: int, out: int, dropout: float, activation: type = nn.Tanh) -> nn.Sequential:
    """Dropout, an optional hidden layer, and the output layer."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    if hidden_size > 0:
        layers += [nn.Linear(input_size, hidden_size), activation(), nn.Dropout(dropout)]
    layers.append(nn.Linear(hidden_size or input_size, out))
    return nn.Sequential(*layers)


MAX_F1_CLASSES = 1024
"""Above this many classes (a language model's vocabulary) macro-F1 is not reported: torchmetrics
counts it in a classes x classes table on every update, and over a vocabulary it says little."""


def _metrics(spec: Spec, classify: bool) -> MetricCollection:
    if classify:
        n = spec.num_classes
        metrics = {"acc": MulticlassAccuracy(n, average="micro")}
        if n <= MAX_F1_CLASSES:
            metrics["f1"] = MulticlassF1Score(n, average="macro")
        return MetricCollection(metrics)
    return MetricCollection({"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)})


def _task(head: str, spec: Spec) -> bool:
    """True to classify, False to regress; an error when the data has neither classes nor targets."""
    if spec.num_classes <= 0 and spec.num_targets <= 0:
        raise SeqkitError(
            f"{head} needs data with classes (spec.num_classes) or regression targets (spec.num_targets); "
            f"{spec.source or 'the data module'} gives neither"
        )
    return spec.num_classes > 0


class ManyToOneHead(Head):
    """Pools the stack's outputs over time and maps them to classes or regression targets."""

    prediction_format = "csv"
    tbptt_targets = "sequence"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        pooling: Literal["last", "mean", "max"] = "last",
        hidden_size: int = 0,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            pooling: "last": the final state (both directions' finals when bidirectional);
                "mean" / "max": the mean / maximum over the real (unpadded) steps.
            hidden_size: If > 0, a hidden layer (tanh) before the output layer.
            dropout: Dropout before the output layer.
        """
        super().__init__(spec, input_size)
        self.classify = _task(type(self).__name__, spec)
        self.pooling = pooling
        self.proj = output_layers(input_size, hidden_size, spec.num_classes if self.classify else spec.num_targets, dropout)
        self.set_metrics(_metrics(spec, self.classify))

    def monitor(self) -> tuple[str, str]:
        return ("val_acc", "max") if self.classify else ("val_loss", "min")

    def pool(self, encoded: Encoded) -> torch.Tensor:
        """(B, D) one vector per sequence."""
        if self.pooling == "last":
            return encoded.final
        out, lengths = encoded.outputs, encoded.lengths  # (B, T, D), (B,)
        B, T, D = out.shape
        if lengths is None:
            lengths = torch.full((B,), T, device=out.device, dtype=torch.long)
        mask = length_mask(lengths.to(out.device), T).unsqueeze(-1)  # (B, T, 1)
        if self.pooling == "max":
            return out.masked_fill(~mask, float("-inf")).amax(1).clamp(min=torch.finfo(out.dtype).min)
        return (out * mask).sum(1) / lengths.to(out.device).clamp(min=1).unsqueeze(-1).to(out.dtype)

    def forward(self, encoded: Encoded) -> torch.Tensor:
        return self.proj(self.pool(encoded))  # (B, classes) or (B, targets)

    def output(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> torch.Tensor:
        return self(encoded)

    def loss_from(self, output: torch.Tensor, batch: Batch, stage: str, update_metrics: bool = True) -> torch.Tensor:
        metrics = self.metrics(stage) if update_metrics else None
        if self.classify:
            loss = F.cross_entropy(output, batch.targets)
            if metrics is not None:
                metrics.update(output.detach().argmax(-1), batch.targets)
        else:
            target = batch.targets.view_as(output).to(output.dtype)
            loss = F.mse_loss(output, target)
            if metrics is not None:
                metrics.update(output.detach().flatten(), target.flatten())
        return loss

    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        return self.loss_from(self(encoded), batch, stage)

    def predict_from(self, output: torch.Tensor, encoded: Encoded, batch: Batch) -> list[dict[str, Any]]:
        pred = output.detach().float().cpu()
        records = records_for(batch)
        if self.classify:
            names = self.spec.label_names()
            for rec, p in zip(records, pred.softmax(-1)):
                rec["label"] = names[int(p.argmax())]
                rec.update({f"p_{name}": round(float(v), 6) for name, v in zip(names, p)})
        else:
            for rec, row in zip(records, pred):
                rec.update({f"y{k}": float(v) for k, v in enumerate(row)})
        return records

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict[str, Any]]:
        return self.predict_from(self(encoded), encoded, batch)


class PerStepHead(Head):
    """A class or a regression output at every time step (tagging, per-frame labels)."""

    prediction_format = "jsonl"
    tbptt_targets = "steps"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        hidden_size: int = 0,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            hidden_size: If > 0, a hidden layer (ReLU) before the output layer.
            dropout: Dropout before the output layer.
            label_smoothing: Label smoothing of the per-step cross-entropy (Szegedy et al. 2016).
        """
        super().__init__(spec, input_size)
        self.classify = _task(type(self).__name__, spec)
        if not 0.0 <= label_smoothing < 1.0:
            raise SeqkitError(f"model.head.init_args.label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        out = spec.num_classes if self.classify else spec.num_targets
        self.proj = output_layers(input_size, hidden_size, out, dropout, nn.ReLU)
        self.set_metrics(_metrics(spec, self.classify))

    def monitor(self) -> tuple[str, str]:
        return ("val_acc", "max") if self.classify else ("val_loss", "min")

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.proj(outputs)  # (B, T, classes) or (B, T, targets)

    def step_losses(self, pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) the loss of every step (padding included; the caller masks it)."""
        if self.classify:
            safe = targets.clamp(0, self.spec.num_classes - 1)  # padding may hold any id
            return F.cross_entropy(pred.transpose(1, 2), safe, reduction="none", label_smoothing=self.label_smoothing)
        return F.mse_loss(pred, targets.view_as(pred).to(pred.dtype), reduction="none").flatten(2).mean(-1)

    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        pred = self(encoded.outputs)
        B, T = pred.shape[:2]
        lengths = encoded.lengths if encoded.lengths is not None else torch.full((B,), T, dtype=torch.long)
        mask = length_mask(lengths.to(pred.device), T)  # (B, T)
        per_seq = (self.step_losses(pred, batch.targets) * mask).sum(1) / mask.sum(1).clamp(min=1)
        has_steps = mask.any(1)  # TBPTT windows past a sequence's end have none
        loss = per_seq[has_steps].mean() if bool(has_steps.any()) else per_seq.sum() * 0.0
        metrics = self.metrics(stage)
        if bool(mask.any()):
            if self.classify:
                metrics.update(pred.detach().argmax(-1)[mask], batch.targets[mask])
            else:
                metrics.update(pred.detach()[mask].flatten(), batch.targets.view_as(pred)[mask].flatten().to(pred.dtype))
        return loss

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict[str, Any]]:
        pred = self(encoded.outputs).cpu()
        B, T = pred.shape[:2]
        lengths = encoded.lengths.tolist() if encoded.lengths is not None else [T] * B
        records = records_for(batch)
        names = self.spec.label_names()
        for rec, p, n in zip(records, pred, lengths):
            if self.classify:
                rec["labels"] = [names[int(c)] for c in p[:n].argmax(-1)]
            else:
                rec["values"] = [[round(float(v), 6) for v in step] for step in p[:n]]
        return records
