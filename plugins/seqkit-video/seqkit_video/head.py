"""Per-frame head: a label for every frame of a clip (many-to-many, aligned), built on the core's
:class:`seqkit.PerStepHead`.

Training batches are windows cut from clips by the data module; their loss is PerStepHead's
(cross-entropy per real frame, averaged per clip, then over clips, so every clip counts the same
and a DDP run averages exactly like one process on the same global batch). Validation, test and
predict batches are whole clips: the head cuts them on the training grid (``VideoSpec.window``
frames, overlapping by ``VideoSpec.overlap``) and re-runs the model's encoder and stack on each
window through the ``encode`` function it is given, then either

- **stitches** the windows' class probabilities with weights that fall off towards each window's
  ends, where the LSTM has the least context (offline labelling, any stack); or
- **streams**: runs consecutive windows, passing each the recurrent state the previous one ended
  in (``encode(window, state)``), as a live stream would. Only a unidirectional stack may do this
  (a backward direction would start every window from the future's zeros).

``streaming: null`` (the default) streams exactly when that is valid, read from what the model
hands over: ``Encoded.state`` is there (the stack keeps a state) and its h has the width of one
output step (one direction; a bidirectional stack's outputs are twice as wide, since
``torch.nn.LSTM``-shaped states hold one h per direction).

Metrics: per-frame accuracy and macro-F1 (torchmetrics), and on whole clips the segmental edit
score and F1@{10,25,50} of MS-TCN (:mod:`seqkit_video.segments`).
"""

from __future__ import annotations

import csv
import os
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from seqkit import Batch, EncodeFn, Encoded, PerStepHead, SeqkitError, State, atomic_write, length_mask, records_for
from seqkit_video.segments import EditScore, SegmentF1
from seqkit_video.spec import IGNORE, VideoBatch, VideoSpec

__all__ = ["IGNORE", "PerFrameHead"]


def _clip_mean(frame_loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over clips of the mean over each clip's real frames: (B, T) -> ()."""
    mask = mask.to(frame_loss.dtype)
    per_clip = (frame_loss * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_clip.mean()


class PerFrameHead(PerStepHead):
    """Predicts a label at every frame from the LSTM stack's outputs; whole clips are windowed as
    in training and stitched (or streamed) back."""

    spec_type = VideoSpec
    prediction_format = "csv"
    tbptt_targets = "steps"

    def __init__(
        self,
        spec: VideoSpec,
        input_size: int,
        hidden_size: int = 0,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        smoothing: float = 0.0,
        smoothing_clip: float = 4.0,
        background: list[str] = [],  # noqa: B006 - jsonargparse needs a literal default to show
        overlaps: list[float] = [0.1, 0.25, 0.5],  # noqa: B006
        streaming: Optional[bool] = None,
        timeline: bool = True,
        timeline_clips: int = 20,
    ) -> None:
        """
        Args:
            spec: Sizes, labels and the window grid from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            hidden_size: If > 0, a hidden layer (ReLU) before the output layer.
            dropout: Dropout before the output layer.
            label_smoothing: Label smoothing of the per-frame cross-entropy (Szegedy et al. 2016).
            smoothing: Weight of MS-TCN's smoothing loss (Farha & Gall 2019; they use 0.15): the
                squared change of the log-probabilities from one frame to the next, truncated at
                ``smoothing_clip``, which penalises flickering labels (over-segmentation, the
                edit score and F1@k) without moving real boundaries much. 0 turns it off.
            smoothing_clip: The truncation, in log-probability units (MS-TCN's tau, 4).
            background: Labels that form no segment in the segment metrics (MS-TCN leaves out
                "background"); per-frame accuracy and F1 still count them.
            overlaps: IoU thresholds of the segmental F1 scores, logged as f1@<100 x k>.
            streaming: How whole clips longer than a window are labelled. true: consecutive
                windows, the recurrent state carried from one to the next (needs a
                unidirectional stack); false: overlapping windows run from zeros and stitched;
                null: stream when the stack is unidirectional, else stitch.
            timeline: With predict, also draw a timeline PNG of predicted (and true) labels
                next to the CSV.
            timeline_clips: The most clips drawn in the timeline PNG.
        """
        super().__init__(spec, input_size, hidden_size, dropout, label_smoothing)
        if smoothing < 0 or smoothing_clip <= 0:
            raise SeqkitError(f"model.head.init_args.smoothing must be >= 0 and smoothing_clip > 0 (got {smoothing}, {smoothing_clip})")
        self.smoothing, self.smoothing_clip = smoothing, smoothing_clip
        names = spec.label_names()
        if not self.classify or spec.num_classes < 2 or len(spec.labels) != spec.num_classes:
            raise SeqkitError(f"PerFrameHead needs data with per-frame labels (at least two, named in spec.labels); "
                              f"{spec.source or 'the data module'} gives {spec.num_classes} class(es)")
        unknown = [b for b in background if b not in names]
        if unknown:
            raise SeqkitError(f"model.head.init_args.background: unknown label(s) {unknown}; labels: {', '.join(names)}")
        if spec.window < 0 or (spec.window and not 0 <= spec.overlap < spec.window):
            raise SeqkitError(f"PerFrameHead: the data's window grid is invalid (window {spec.window}, overlap {spec.overlap})")
        self.names = names
        self.window, self.overlap = spec.window, spec.overlap if spec.window else 0
        self.streaming = streaming
        self.timeline, self.timeline_clips = timeline, timeline_clips
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

    # -- whole clips ------------------------------------------------------------------------
    def _windows(self, T: int) -> list[int]:
        """Start frames of the windows over T frames: the grid the data module cuts training
        windows on (``seqkit_video.data.cut_windows``)."""
        step = self.window - self.overlap
        return [s for s in range(0, T, step) if s == 0 or s + self.overlap < T]

    def streams(self, encoded: Encoded) -> bool:
        """Whether whole clips are labelled by streaming (see the module docstring)."""
        state = encoded.state
        one_way = state is not None and state[0].shape[-1] == encoded.outputs.shape[-1]
        if self.streaming is None:
            return one_way
        if self.streaming and not one_way:
            raise SeqkitError(
                "model.head.init_args.streaming: true carries the recurrent state from window to window, which needs "
                "a unidirectional stack that keeps a state (model.rnn with bidirectional: false); set streaming: "
                "false to stitch overlapping windows, or null to choose by the stack"
            )
        return bool(self.streaming)

    def clip_log_probs(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> torch.Tensor:
        """(B, T, classes) log-probabilities of every frame of whole clips, windowed as in training.

        :param encoded: The model's pass over the whole clips (used as it is when no clip is
            longer than a window).
        :param batch: The clips.
        :param encode: The model's ``encode(batch, state)``, re-run on each window.
        """
        x, lengths = batch.inputs, batch.lengths
        B, T = x.shape[:2]  # clips, frames
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device)
        if not self.window or T <= self.window:
            return F.log_softmax(self(encoded.outputs), -1)
        if self.streams(encoded):
            return self._streamed(x, lengths, encode)
        return self._stitched(x, lengths, encode)

    def _stitched(self, x: torch.Tensor, lengths: torch.Tensor, encode: EncodeFn) -> torch.Tensor:
        """Overlapping windows, each from a zero state, their probabilities averaged with weights."""
        B, T = x.shape[:2]
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
            p = F.softmax(self(encode(part, None).outputs), -1)  # (b, w, classes)
            # weights ramp up over the first `overlap` frames of a window and down over its last
            j = torch.arange(width, device=x.device, dtype=p.dtype)
            w = torch.minimum((j + 1) / (self.overlap + 1), (n[idx, None] - j) / (self.overlap + 1)).clamp(max=1.0)
            w = (w * length_mask(n[idx], width)).unsqueeze(-1)  # (b, w, 1), zero on padding
            probs[idx, s : s + width] += p * w
            weight[idx, s : s + width] += w
        return (probs / weight.clamp(min=1e-12)).clamp(min=1e-12).log()

    def _streamed(self, x: torch.Tensor, lengths: torch.Tensor, encode: EncodeFn) -> torch.Tensor:
        """Consecutive windows, each starting from the state the previous one ended in."""
        B, T = x.shape[:2]
        out = x.new_zeros(B, T, self.spec.num_classes)
        state: Optional[State] = None  # (layers, B, size) per tensor, every clip's latest state
        for s in range(0, T, self.window):
            n = (lengths - s).clamp(0, self.window)
            idx = (n > 0).nonzero().squeeze(1)  # clips still running: a subset of the last window's
            if idx.numel() == 0:
                break
            width = int(n[idx].max())
            start = None if state is None else tuple(h[:, idx].contiguous() for h in state)
            enc = encode(Batch(inputs=x[idx, s : s + width], lengths=n[idx]), start)
            out[idx, s : s + width] = F.log_softmax(self(enc.outputs), -1)
            if state is None:  # h and c differ in size with an LSTM projection
                state = tuple(h.new_zeros(h.shape[0], B, *h.shape[2:]) for h in enc.state)
            for full, part in zip(state, enc.state):
                full[:, idx] = part
        return out

    def smoothing_loss(self, log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MS-TCN's truncated MSE between each frame's log-probabilities and the previous
        frame's (detached), averaged over classes, then per clip, then over clips."""
        step = (log_probs[:, 1:] - log_probs[:, :-1].detach()).pow(2).clamp(max=self.smoothing_clip**2).mean(-1)
        return _clip_mean(step, mask[:, 1:] & mask[:, :-1])

    # -- the contract -------------------------------------------------------------------------
    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        if stage == "train" and not self.smoothing:  # windows: PerStepHead's per-frame loss and frame metrics
            return super().loss(encoded, batch, stage, encode)
        if stage == "train":  # windows, one pass of the output layer for both losses
            log_probs = F.log_softmax(self(encoded.outputs), -1)
        else:
            log_probs = self.clip_log_probs(encoded, batch, encode)  # (B, T, classes)
        B, T = log_probs.shape[:2]
        lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T, dtype=torch.long)
        lengths = lengths.to(log_probs.device)
        mask = length_mask(lengths, T)  # (B, T)
        # cross-entropy of normalised log-probabilities is their NLL (and smooths labels alike)
        loss = _clip_mean(self.step_losses(log_probs, batch.targets), mask)
        if self.smoothing:
            loss = loss + self.smoothing * self.smoothing_loss(log_probs, mask)
        pred = log_probs.detach().argmax(-1)
        if stage == "train":
            self.metrics(stage).update(pred[mask], batch.targets[mask])
            return loss
        metrics = self.metrics(stage)
        metrics["acc"].update(pred[mask], batch.targets[mask])
        metrics["f1"].update(pred[mask], batch.targets[mask])
        for key in self._segment_keys:
            metrics[key].update(pred, batch.targets, lengths)
        return loss

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict[str, Any]]:
        log_probs = self.clip_log_probs(encoded, batch, encode)
        conf, pred = log_probs.detach().exp().max(-1)  # (B, T)
        conf, pred = conf.cpu(), pred.cpu()
        B, T = pred.shape
        lengths = (batch.lengths.cpu() if batch.lengths is not None else torch.full((B,), T)).tolist()
        numbers = batch.frame_numbers if isinstance(batch, VideoBatch) else None
        numbers = (numbers if numbers is not None else torch.arange(T).expand(B, T)).cpu()
        targets = batch.targets.cpu() if isinstance(batch.targets, torch.Tensor) else None
        records = records_for(batch)
        for b, (rec, n) in enumerate(zip(records, lengths)):
            rec["frames"] = numbers[b, :n].tolist()
            rec["labels"] = [self.names[k] for k in pred[b, :n].tolist()]
            rec["confidence"] = [round(float(p), 4) for p in conf[b, :n]]
            if targets is not None and bool((targets[b, :n] != IGNORE).all()):
                rec["true"] = [self.names[k] for k in targets[b, :n].tolist()]
        return records

    def write_predictions(self, path: str, records: list[dict]) -> None:
        """Write per-frame predictions (``.csv``: one row per frame, ``clip,frame,label,confidence``
        and ``true`` when any clip has labels; ``.jsonl``: one object per clip, its name in
        ``input``; ``.txt``: one line per clip) and, next to them, ``<name>_timeline.png``."""
        ext = os.path.splitext(path)[1].lower()
        if ext == ".csv":
            with atomic_write(path, encoding="utf-8", newline="") as fh:
                has_true = any("true" in r for r in records)
                writer = csv.writer(fh)
                writer.writerow(["clip", "frame", "label", "confidence"] + (["true"] if has_true else []))
                for r in records:
                    clip = r.get("input", r["index"])
                    true = r.get("true") or [""] * len(r["labels"])
                    for k, (frame, label, p) in enumerate(zip(r["frames"], r["labels"], r["confidence"])):
                        writer.writerow([clip, frame, label, p] + ([true[k]] if has_true else []))
        elif ext == ".txt":
            with atomic_write(path, encoding="utf-8") as fh:
                for r in records:
                    fh.write(f"{r.get('input', r['index'])}\t{' '.join(r['labels'])}\n")
        else:  # .jsonl, or the core's message naming the formats
            super().write_predictions(path, records)
        if self.timeline and records:
            from seqkit_video.timeline import draw_timeline

            draw_timeline(os.path.splitext(path)[0] + "_timeline.png", records[: self.timeline_clips], self.names, total=len(records))
