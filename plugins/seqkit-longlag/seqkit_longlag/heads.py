"""Heads for the long-time-lag tasks, each scoring the paper's success criterion.

Hochreiter & Schmidhuber (1997) count a sequence as "processed correctly" by a task-specific
rule (the absolute error at the end is below 0.04 for the adding problem; every output unit is
within 0.3 of its target for temporal order; the possible next symbols are the most active
outputs at every step for the Reber grammar), and a task as solved when every test sequence is.
Both heads log, per stage:

- ``<stage>_correct``: the fraction of sequences processed correctly;
- ``<stage>_wrong``: how many were not (the paper's "wrong predictions"); 0 means solved.

The rule and its tolerance come from the data module (``spec.extra["criterion"]``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import MaxMetric, MeanMetric, SumMetric

from seqkit import Batch, Encoded, Head, SeqkitError, Spec, final_hidden, length_mask

END_CRITERIA = ("abs_error", "output_error")
STEP_CRITERIA = ("next_symbols", "argmax")


def _criterion(spec: Spec, allowed: tuple[str, ...], head: str) -> tuple[str, float]:
    rule = spec.extra.get("criterion")
    if rule not in allowed:
        raise SeqkitError(
            f"{head} scores a success criterion the data module names in spec.extra['criterion'] "
            f"(one of: {', '.join(allowed)}); this data gives {rule!r}"
        )
    return rule, float(spec.extra.get("tolerance", 0.0))


def _criterion_metrics() -> dict[str, Any]:
    return {"correct": MeanMetric(), "wrong": SumMetric()}


class LongLagEndHead(Head):
    """One output at the end of each sequence, read from the stack's final state: a real value
    (adding problem) or a class (temporal order)."""

    prediction_format = "csv"
    tbptt_targets = "sequence"

    def __init__(self, spec: Spec, input_size: int) -> None:
        """
        Args:
            spec: Sizes and the success criterion from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
        """
        super().__init__(spec, input_size)
        self.rule, self.tolerance = _criterion(spec, END_CRITERIA, type(self).__name__)
        self.classify = self.rule == "output_error"
        out = spec.num_classes if self.classify else spec.num_targets
        if out <= 0:
            raise SeqkitError(f"{type(self).__name__} needs num_classes or num_targets in the data's spec")
        self.proj = nn.Linear(input_size, out)
        metrics = _criterion_metrics()
        if not self.classify:
            metrics["max_abs_err"] = MaxMetric()
        self.set_metrics(MetricCollection(metrics))

    def pool(self, encoded: Encoded, model) -> torch.Tensor:
        rnn = getattr(model, "rnn", None)
        if encoded.state is not None and rnn is not None:
            return final_hidden(encoded.state, rnn.num_layers, rnn.num_directions)  # (B, D)
        out, lengths = encoded.outputs, encoded.lengths  # (B, T, D)
        B, T, _ = out.shape
        last = (lengths.to(out.device) - 1).clamp(min=0) if lengths is not None else torch.full((B,), T - 1, device=out.device)
        return out[torch.arange(B, device=out.device), last]

    def forward(self, encoded: Encoded, batch: Batch, model=None) -> torch.Tensor:
        return self.proj(self.pool(encoded, model))  # (B, classes) or (B, targets)

    def _correct(self, pred: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) whether each sequence meets the criterion, and its largest output error."""
        if self.classify:
            onehot = F.one_hot(targets, pred.shape[-1]).to(pred.dtype)
            err = (pred.softmax(-1) - onehot).abs().amax(-1)  # every output unit within the tolerance
        else:
            err = (pred - targets.view_as(pred).to(pred.dtype)).abs().amax(-1)
        return err < self.tolerance, err

    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        pred = self(model.encode(batch), batch, model)
        if self.classify:
            loss = F.cross_entropy(pred, batch.targets)
        else:
            loss = F.mse_loss(pred, batch.targets.view_as(pred).to(pred.dtype))
        ok, err = self._correct(pred.detach(), batch.targets)
        metrics = self.metrics(stage)
        metrics["correct"].update(ok.float())
        metrics["wrong"].update((~ok).float().sum())
        if not self.classify:
            metrics["max_abs_err"].update(err)
        return loss

    def predict(self, model, batch: Batch) -> list[dict]:
        pred = self(model.encode(batch), batch, model).cpu()
        targets = batch.targets.cpu() if batch.targets is not None else None
        records = []
        for n, i in enumerate(batch.index.tolist()):
            if self.classify:
                names = self.spec.extra.get("labels") or [str(c) for c in range(self.spec.num_classes)]
                rec = {"index": i, "label": names[int(pred[n].argmax())]}
                if targets is not None:
                    rec["target"] = names[int(targets[n])]
            else:
                rec = {"index": i, "prediction": round(float(pred[n, 0]), 6)}
                if targets is not None:
                    rec["target"] = round(float(targets[n].view(-1)[0]), 6)
            records.append(rec)
        return records


class LongLagStepHead(Head):
    """An output at every step: the possible next symbols (multi-label, Reber grammar) or one
    class per step (copy task)."""

    prediction_format = "jsonl"
    tbptt_targets = "steps"

    def __init__(self, spec: Spec, input_size: int) -> None:
        """
        Args:
            spec: Sizes and the success criterion from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
        """
        super().__init__(spec, input_size)
        self.rule, _ = _criterion(spec, STEP_CRITERIA, type(self).__name__)
        self.multi_label = self.rule == "next_symbols"
        if spec.num_classes <= 0:
            raise SeqkitError(f"{type(self).__name__} needs num_classes in the data's spec")
        self.proj = nn.Linear(input_size, spec.num_classes)
        self.set_metrics(MetricCollection(_criterion_metrics()))

    def forward(self, encoded: Encoded, batch: Batch, model=None) -> torch.Tensor:
        return self.proj(encoded.outputs)  # (B, T, C)

    def _step_correct(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) whether each step's output is right."""
        if not self.multi_label:
            return logits.argmax(-1) == targets
        # the k possible next symbols must be the k most active outputs
        want = targets > 0.5  # (B, T, C)
        lowest_wanted = logits.masked_fill(~want, float("inf")).amin(-1)  # (B, T)
        highest_other = logits.masked_fill(want, float("-inf")).amax(-1)  # (B, T)
        return lowest_wanted > highest_other

    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        logits = self(model.encode(batch), batch, model)  # (B, T, C)
        B, T, C = logits.shape
        lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T)
        mask = length_mask(lengths.to(logits.device), T)  # (B, T)
        if self.multi_label:
            per_step = F.binary_cross_entropy_with_logits(logits, batch.targets.to(logits.dtype), reduction="none").sum(-1)
        else:
            per_step = F.cross_entropy(logits.transpose(1, 2), batch.targets, reduction="none")  # (B, T)
        loss = (per_step * mask).sum() / mask.sum().clamp(min=1)
        ok = (self._step_correct(logits.detach(), batch.targets) | ~mask).all(-1)  # (B,)
        real = lengths.to(logits.device) > 0  # rows that have steps (TBPTT windows past a row's end have none)
        metrics = self.metrics(stage)
        if bool(real.any()):
            metrics["correct"].update(ok[real].float())
        metrics["wrong"].update((~ok & real).float().sum())
        return loss

    def predict(self, model, batch: Batch) -> list[dict]:
        logits = self(model.encode(batch), batch, model).cpu()  # (B, T, C)
        names = self.spec.extra.get("output_symbols") or [str(c) for c in range(self.spec.num_classes)]
        lengths = batch.lengths.tolist() if batch.lengths is not None else [logits.shape[1]] * logits.shape[0]
        records = []
        for n, i in enumerate(batch.index.tolist()):
            steps = logits[n, : lengths[n]]
            if self.multi_label:
                out = ["".join(names[c] for c in range(len(names)) if p[c] > 0) for p in steps]
            else:
                out = [names[int(c)] for c in steps.argmax(-1)]
            records.append({"index": i, "predicted": out})
        return records
