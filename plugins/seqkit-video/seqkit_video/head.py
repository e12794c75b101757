"""Per-frame head: a label for every frame of a clip (many-to-many, aligned).

Training batches are windows cut from clips by the data module. Validation, test and predict
batches are whole clips: the head cuts them into the same windows (overlapping by
``spec.extra["overlap"]`` frames), runs the model on each and stitches the class probabilities
back with weights that fall off towards each window's ends, where the LSTM has the least
context. With a unidirectional (streaming) stack it instead carries the LSTM state from one
window to the next, as a live stream would.

Loss: cross-entropy per real frame, averaged per clip, then over clips (so every clip counts the
same, and a DDP run averages exactly like one process on the same global batch). Metrics:
per-frame accuracy and macro-F1 (torchmetrics), and on whole clips the segmental edit score and
F1@{10,25,50} of MS-TCN (:mod:`seqkit_video.segments`).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqkit import Batch, Head, SeqkitError, Spec, atomic_write, length_mask
from seqkit_video.segments import EditScore, SegmentF1

IGNORE = -100  # target id of padding frames


def _clip_mean(frame_loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over clips of the mean over each clip's real frames: (B, T) -> ()."""
    per_clip = (frame_loss * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_clip.mean()


class PerFrameHead(Head):
    """Predicts a label at every frame from the LSTM stack's outputs."""

    prediction_format = "csv"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        hidden_size: int = 0,
        dropout: float = 0.0,
        background: list[str] = [],  # noqa: B006 - jsonargparse needs a literal default to show
        overlaps: list[float] = [0.1, 0.25, 0.5],  # noqa: B006
        timeline: bool = True,
        timeline_clips: int = 20,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            hidden_size: If > 0, a hidden layer (ReLU) before the output layer.
            dropout: Dropout before the output layer.
            background: Labels that form no segment in the segment metrics (MS-TCN leaves out
                "background"); per-frame accuracy and F1 still count them.
            overlaps: IoU thresholds of the segmental F1 scores, logged as f1@<100 x k>.
            timeline: With predict, also draw a timeline PNG of predicted (and true) labels
                next to the CSV.
            timeline_clips: The most clips drawn in the timeline PNG.
        """
        super().__init__(spec, input_size)
        names = list(spec.extra.get("labels") or [])
        if spec.num_classes < 2 or len(names) != spec.num_classes:
            raise SeqkitError("PerFrameHead needs data with per-frame labels (spec.num_classes >= 2 and spec.extra['labels'])")
        unknown = [b for b in background if b not in names]
        if unknown:
            raise SeqkitError(f"model.head.init_args.background: unknown label(s) {unknown}; labels: {', '.join(names)}")
        self.names = names
        self.window = int(spec.extra.get("window") or 0)
        self.overlap = int(spec.extra.get("overlap") or 0)
        self.timeline, self.timeline_clips = timeline, timeline_clips
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size > 0:
            layers += [nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_size or input_size, spec.num_classes))
        self.proj = nn.Sequential(*layers)
        n = spec.num_classes
        bg = [names.index(b) for b in background]
        frame_metrics = {"acc": MulticlassAccuracy(n, average="micro"), "f1": MulticlassF1Score(n, average="macro")}
        segment_metrics = {"edit": EditScore(bg), **{f"f1@{round(k * 100)}": SegmentF1(k, bg) for k in overlaps}}
        self.set_metrics(MetricCollection({**frame_metrics, **segment_metrics}, compute_groups=False))
        # training batches are windows cut from clips: segment metrics would count the cuts
        self.train_metrics = MetricCollection(
            {k: m.clone() for k, m in frame_metrics.items()}, prefix="train_", compute_groups=False
        )
        self._segment_keys = list(segment_metrics)

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.proj(outputs)  # (B, T, classes)

    # -- whole clips ------------------------------------------------------------------------
    def _windows(self, T: int) -> list[int]:
        step = self.window - self.overlap
        return [s for s in range(0, T, step) if s == 0 or s + self.overlap < T]

    def clip_log_probs(self, model, batch: Batch) -> torch.Tensor:
        """(B, T, classes) log-probabilities of every frame of whole clips, windowed as in training."""
        x, lengths = batch.inputs, batch.lengths
        B, T = x.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        if not self.window or T <= self.window:
            return F.log_softmax(self(model.encode(batch).outputs), -1)
        rnn = model.rnn
        if rnn is not None and not getattr(rnn, "bidirectional", True):
            return self._streamed(model, batch, lengths)
        probs = x.new_zeros(B, T, self.spec.num_classes)
        weight = x.new_zeros(B, T, 1)
        for s in self._windows(T):
            n = (lengths - s).clamp(0, self.window)  # (B,) real frames of each clip in this window
            keep = (n > 0) & (lengths > s + self.overlap) if s else n > 0  # clips this window still covers
            if not keep.any():
                continue
            idx = keep.nonzero().squeeze(1)
            width = int(n[idx].max())
            part = Batch(inputs=x[idx, s : s + width], lengths=n[idx])
            p = F.softmax(self(model.encode(part).outputs), -1)  # (b, w, classes)
            # weights ramp up over the first `overlap` frames of a window and down over its last
            j = torch.arange(width, device=x.device, dtype=x.dtype)
            w = torch.minimum((j + 1) / (self.overlap + 1), (n[idx, None] - j) / (self.overlap + 1)).clamp(max=1.0)
            w = (w * length_mask(n[idx], width)).unsqueeze(-1)  # (b, w, 1), zero on padding
            probs[idx, s : s + width] += p * w
            weight[idx, s : s + width] += w
        return (probs / weight.clamp(min=1e-12)).clamp(min=1e-12).log()

    def _streamed(self, model, batch: Batch, lengths: torch.Tensor) -> torch.Tensor:
        """Unidirectional stack: consecutive windows, the LSTM state carried across them."""
        x = batch.inputs
        B, T = x.shape[:2]
        out = x.new_zeros(B, T, self.spec.num_classes)
        h = c = None
        for s in range(0, T, self.window):
            n = (lengths - s).clamp(0, self.window)
            idx = (n > 0).nonzero().squeeze(1)
            width = int(n[idx].max())
            state = None if h is None else (h[:, idx].contiguous(), c[:, idx].contiguous())
            enc = model.encode(Batch(inputs=x[idx, s : s + width], lengths=n[idx]), state)
            out[idx, s : s + width] = F.log_softmax(self(enc.outputs), -1)
            if h is None:  # (layers, B, H); h and c differ in size with an LSTM projection
                h = enc.state[0].new_zeros(enc.state[0].shape[0], B, enc.state[0].shape[2])
                c = enc.state[1].new_zeros(enc.state[1].shape[0], B, enc.state[1].shape[2])
            h[:, idx], c[:, idx] = enc.state
        return out

    # -- the contract -------------------------------------------------------------------------
    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        B, T = batch.targets.shape
        lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T, dtype=torch.long)
        mask = length_mask(lengths.to(batch.targets.device), T)  # (B, T)
        if stage == "train":
            logits = self(model.encode(batch).outputs)  # (B, T, classes)
            frame_loss = F.cross_entropy(logits.transpose(1, 2), batch.targets, ignore_index=IGNORE, reduction="none")
            pred = logits.argmax(-1)
        else:
            log_probs = self.clip_log_probs(model, batch)
            frame_loss = F.nll_loss(log_probs.transpose(1, 2), batch.targets, ignore_index=IGNORE, reduction="none")
            pred = log_probs.argmax(-1)
        loss = _clip_mean(frame_loss, mask.to(frame_loss.dtype))
        metrics = self.metrics(stage)
        metrics["acc"].update(pred[mask], batch.targets[mask])
        metrics["f1"].update(pred[mask], batch.targets[mask])
        if stage != "train":
            for key in self._segment_keys:
                metrics[key].update(pred, batch.targets, lengths)
        return loss

    def predict(self, model, batch: Batch) -> list[dict[str, Any]]:
        log_probs = self.clip_log_probs(model, batch)
        conf, pred = log_probs.exp().max(-1)  # (B, T)
        B, T = pred.shape
        lengths = (batch.lengths if batch.lengths is not None else torch.full((B,), T)).tolist()
        clips = batch.extra.get("clips") or [str(i) for i in batch.index.tolist()]
        stride = int(self.spec.extra.get("frame_stride") or 1)
        records = []
        for b, (i, n) in enumerate(zip(batch.index.tolist(), lengths)):
            rec = {
                "index": i,
                "clip": clips[b],
                "frames": [t * stride for t in range(n)],
                "labels": [self.names[k] for k in pred[b, :n].tolist()],
                "confidence": [round(float(p), 4) for p in conf[b, :n]],
            }
            if batch.targets is not None and bool((batch.targets[b, :n] >= 0).all()):
                rec["true"] = [self.names[k] for k in batch.targets[b, :n].tolist()]
            records.append(rec)
        return records

    def write_predictions(self, path: str, records: list[dict]) -> None:
        """Write per-frame predictions (``.csv``: one row per frame; ``.jsonl``: one object per
        clip) and, next to them, ``<name>_timeline.png``. Called by seqkit's PredictionWriter."""
        ext = os.path.splitext(path)[1].lower()
        if ext == ".jsonl":
            with atomic_write(path, encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif ext == ".csv":
            with atomic_write(path, encoding="utf-8", newline="") as fh:
                has_true = any("true" in r for r in records)
                writer = csv.writer(fh)
                writer.writerow(["clip", "frame", "label", "confidence"] + (["true"] if has_true else []))
                for r in records:
                    true = r.get("true") or [""] * len(r["labels"])
                    for k, (frame, label, p) in enumerate(zip(r["frames"], r["labels"], r["confidence"])):
                        writer.writerow([r["clip"], frame, label, p] + ([true[k]] if has_true else []))
        elif ext == ".txt":
            with atomic_write(path, encoding="utf-8") as fh:
                for r in records:
                    fh.write(f"{r['clip']}\t{' '.join(r['labels'])}\n")
        else:
            raise SeqkitError(f"prediction.output: unknown format {ext or path!r}; use .csv, .jsonl or .txt")
        if self.timeline and records:
            from seqkit_video.timeline import draw_timeline

            draw_timeline(os.path.splitext(path)[0] + "_timeline.png", records[: self.timeline_clips], self.names, total=len(records))
