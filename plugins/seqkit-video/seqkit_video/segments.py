"""Segment-level metrics of temporal action segmentation: edit score and F1@k.

Follows the evaluation of MS-TCN (Farha & Gall, CVPR 2019, ``eval.py``), itself taken from
Lea et al. (2017), "Temporal Convolutional Networks for Action Segmentation and Detection":

- a clip's frame labels become segments (maximal runs of one label); labels named as
  *background* form no segment;
- **edit score**: ``1 - levenshtein(P, Y) / max(len(P), len(Y))`` over the sequences of segment
  labels, averaged over clips (it punishes over-segmentation, which frame accuracy hardly sees);
- **F1@k**: each predicted segment is matched to the true segment of the same label with the
  highest IoU; it is a true positive when that IoU >= k and the true segment was not matched
  before, else a false positive; unmatched true segments are false negatives. tp/fp/fn are
  summed over all clips, then F1 = 2PR / (P + R).

Scores are in [0, 1] (MS-TCN's tables print them x100). One deliberate difference: segments are
half-open ``[start, end)``; MS-TCN's ``get_labels_start_end_time`` ends a clip's last segment one
frame early (at T-1), which changes its IoU by at most one frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric


def segments(labels: Sequence[int], background: Sequence[int] = ()) -> list[tuple[int, int, int]]:
    """Maximal runs of equal labels as ``(label, start, end)`` with ``end`` exclusive; runs of a
    background label are left out."""
    out: list[tuple[int, int, int]] = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] not in background:
                out.append((int(labels[start]), start, t))
            start = t
    return out


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance between two sequences (insertions, deletions, substitutions all cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = prev[j - 1] if x == y else 1 + min(prev[j], cur[j - 1], prev[j - 1])
        prev = cur
    return prev[-1]


def edit_score(pred: Sequence[int], true: Sequence[int], background: Sequence[int] = ()) -> float:
    """Segmental edit score of one clip in [0, 1]; 1.0 when neither has any segment."""
    p = [s[0] for s in segments(pred, background)]
    y = [s[0] for s in segments(true, background)]
    if not p and not y:
        return 1.0
    return 1.0 - levenshtein(p, y) / max(len(p), len(y))


def f1_counts(pred: Sequence[int], true: Sequence[int], overlap: float, background: Sequence[int] = ()) -> tuple[int, int, int]:
    """(tp, fp, fn) of one clip at IoU threshold ``overlap``, matched as MS-TCN's ``f_score``."""
    p_segs, y_segs = segments(pred, background), segments(true, background)
    hits = [False] * len(y_segs)
    tp = fp = 0
    for label, ps, pe in p_segs:
        best, best_iou = -1, -1.0
        for k, (ylabel, ys, ye) in enumerate(y_segs):
            if ylabel != label:
                iou = 0.0
            else:
                inter = min(pe, ye) - max(ps, ys)
                union = max(pe, ye) - min(ps, ys)
                iou = max(inter, 0) / union
            if iou > best_iou:  # first best, like numpy's argmax
                best, best_iou = k, iou
        if best >= 0 and best_iou >= overlap and not hits[best]:
            tp += 1
            hits[best] = True
        else:
            fp += 1
    return tp, fp, len(y_segs) - sum(hits)


def _sequences(preds, target, lengths) -> list[tuple[list[int], list[int]]]:
    """Per clip (pred, true) label lists from padded (B, T) tensors and (B,) lengths."""
    preds, target, lengths = preds.detach().cpu(), target.detach().cpu(), lengths.detach().cpu()
    return [(preds[b, :n].tolist(), target[b, :n].tolist()) for b, n in enumerate(lengths.tolist())]


class EditScore(Metric):
    """Segmental edit score averaged over clips (MS-TCN "Edit"), in [0, 1]."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, background: Sequence[int] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.background = tuple(background)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("clips", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> None:
        """``preds``/``target``: (B, T) label ids; ``lengths``: (B,) real frames of each clip."""
        for p, y in _sequences(preds, target, lengths):
            self.total += edit_score(p, y, self.background)
            self.clips += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.clips.clamp(min=1)).float()


class SegmentF1(Metric):
    """F1 of segments at IoU threshold ``overlap`` (MS-TCN "F1@k"), tp/fp/fn summed over clips."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, overlap: float, background: Sequence[int] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.overlap, self.background = overlap, tuple(background)
        for name in ("tp", "fp", "fn"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor) -> None:
        for p, y in _sequences(preds, target, lengths):
            tp, fp, fn = f1_counts(p, y, self.overlap, self.background)
            self.tp += tp
            self.fp += fp
            self.fn += fn

    def compute(self) -> torch.Tensor:
        tp, fp, fn = self.tp.double(), self.fp.double(), self.fn.double()
        precision = tp / (tp + fp) if tp + fp > 0 else tp * 0
        recall = tp / (tp + fn) if tp + fn > 0 else tp * 0
        if precision + recall == 0:
            return torch.tensor(0.0, device=self.tp.device)
        return (2 * precision * recall / (precision + recall)).float()
