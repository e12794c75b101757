"""Heads for the long-time-lag tasks, each scoring the paper's success criterion.

Hochreiter & Schmidhuber (1997) count a sequence as "processed correctly" by a task-specific
rule (the absolute error at the end is below 0.04 for the adding problem; every output unit is
within 0.3 of its target for temporal order; the possible next symbols are the most active
outputs at every step for the Reber grammar), and a task as solved when every test sequence is.
Both heads log, per stage:

- ``<stage>_correct``: the fraction of sequences processed correctly;
- ``<stage>_wrong``: how many were not (the paper's "wrong predictions"); 0 means solved.

The rule and its tolerance come from the data module's :class:`~seqkit_longlag.spec.LongLagSpec`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import MaxMetric, MeanMetric, SumMetric

from seqkit import Batch, EncodeFn, Encoded, Head, ManyToOneHead, SeqkitError, length_mask, records_for
from seqkit_longlag.spec import END_CRITERIA, STEP_CRITERIA, LongLagSpec


def _criterion(spec: LongLagSpec, allowed: tuple[str, ...], head: str) -> tuple[str, float]:
    if spec.criterion not in allowed:
        raise SeqkitError(
            f"{head} scores one of the success criteria {', '.join(allowed)}; {spec.source or 'the data module'} "
            f"({spec.task or 'no task'}) gives {spec.criterion!r}"
        )
    return spec.criterion, float(spec.tolerance)


def _criterion_metrics() -> dict[str, Any]:
    return {"correct": MeanMetric(), "wrong": SumMetric()}


def _monitor(self) -> tuple[str, str]:
    return "val_wrong", "min"  # the papers' criterion: sequences (or steps) the net gets wrong


class LongLagEndHead(ManyToOneHead):
    """One output at the end of each sequence, read from the stack's final state (``Encoded.final``):
    a real value (adding problem) or a class (temporal order). The paper's nets read it with one
    linear layer, so this is the core's ManyToOneHead with "last" pooling and no hidden layer."""

    spec_type = LongLagSpec
    prediction_format = "csv"
    tbptt_targets = "sequence"

    def __init__(self, spec: LongLagSpec, input_size: int) -> None:
        """
        Args:
            spec: Sizes and the success criterion from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
        """
        super().__init__(spec, input_size, pooling="last")
        self.rule, self.tolerance = _criterion(spec, END_CRITERIA, type(self).__name__)
        if self.classify != (self.rule == "output_error"):
            raise SeqkitError(f"{type(self).__name__}: criterion {self.rule!r} does not fit data with "
                              f"{spec.num_classes} classes and {spec.num_targets} targets")
        metrics = _criterion_metrics()
        if not self.classify:
            metrics["max_abs_err"] = MaxMetric()
        self.set_metrics(MetricCollection(metrics))

    monitor = _monitor

    def _correct(self, pred: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) whether each sequence meets the criterion, and its largest output error."""
        if self.classify:
            onehot = F.one_hot(targets, pred.shape[-1]).to(pred.dtype)
            err = (pred.softmax(-1) - onehot).abs().amax(-1)  # every output unit within the tolerance
        else:
            err = (pred - targets.view_as(pred).to(pred.dtype)).abs().amax(-1)
        return err < self.tolerance, err

    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        pred = self(encoded)  # (B, classes) or (B, targets)
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

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict]:
        pred = self(encoded).detach().cpu()
        targets = batch.targets.cpu() if isinstance(batch.targets, torch.Tensor) else None
        records = records_for(batch)
        names = self.spec.label_names()
        for n, rec in enumerate(records):
            if self.classify:
                rec["label"] = names[int(pred[n].argmax())]
                if targets is not None:
                    rec["target"] = names[int(targets[n])]
            else:
                rec["prediction"] = round(float(pred[n, 0]), 6)
                if targets is not None:
                    rec["target"] = round(float(targets[n].view(-1)[0]), 6)
        return records


class LongLagStepHead(Head):
    """An output at every step: the possible next symbols (multi-label, Reber grammar) or one
    class per step (copy task)."""

    spec_type = LongLagSpec
    prediction_format = "jsonl"
    tbptt_targets = "steps"

    def __init__(self, spec: LongLagSpec, input_size: int) -> None:
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

    monitor = _monitor

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.proj(outputs)  # (B, T, C)

    def _step_correct(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) whether each step's output is right."""
        if not self.multi_label:
            return logits.argmax(-1) == targets
        # the k possible next symbols must be the k most active outputs
        want = targets > 0.5  # (B, T, C)
        lowest_wanted = logits.masked_fill(~want, float("inf")).amin(-1)  # (B, T)
        highest_other = logits.masked_fill(want, float("-inf")).amax(-1)  # (B, T)
        return lowest_wanted > highest_other

    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        logits = self(encoded.outputs)  # (B, T, C)
        B, T, C = logits.shape
        lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T)
        lengths = lengths.to(logits.device)
        mask = length_mask(lengths, T)  # (B, T)
        if self.multi_label:
            per_step = F.binary_cross_entropy_with_logits(logits, batch.targets.to(logits.dtype), reduction="none").sum(-1)
        else:  # padding may hold any id: clamp it into range, the mask drops it
            per_step = F.cross_entropy(logits.transpose(1, 2), batch.targets.clamp(0, C - 1), reduction="none")  # (B, T)
        # the mean over every real step of the batch, as the paper's per-step error
        loss = (per_step * mask).sum() / mask.sum().clamp(min=1)
        ok = (self._step_correct(logits.detach(), batch.targets) | ~mask).all(-1)  # (B,)
        real = lengths > 0  # rows that have steps (TBPTT windows past a row's end have none)
        metrics = self.metrics(stage)
        if bool(real.any()):
            metrics["correct"].update(ok[real].float())
        metrics["wrong"].update((~ok & real).float().sum())
        return loss

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict]:
        logits = self(encoded.outputs).detach().cpu()  # (B, T, C)
        names = self.spec.output_symbols or [str(c) for c in range(self.spec.num_classes)]
        lengths = batch.lengths.tolist() if batch.lengths is not None else [logits.shape[1]] * logits.shape[0]
        records = records_for(batch)
        for n, rec in enumerate(records):
            steps = logits[n, : lengths[n]]
            if self.multi_label:
                rec["predicted"] = ["".join(names[c] for c in range(len(names)) if p[c] > 0) for p in steps]
            else:
                rec["predicted"] = [names[int(c)] for c in steps.argmax(-1)]
        return records
