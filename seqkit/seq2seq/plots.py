"""Attention pictures, written by a Lightning callback while a model tests or predicts.

Where a decoder looked for each token it wrote: a heatmap over the source tokens (Bahdanau et al.
2015, fig. 3; Luong et al. 2015, fig. 7), or one panel per word with the attention over the image
(Xu et al. 2015, "Show, Attend and Tell", figs. 2 and 3).

The division of labour: :class:`AttentionPlot` (add it under ``trainer.callbacks``) hands the
model's head an :class:`AttentionLog` when testing or predicting starts; a decoding head puts an
:class:`AttentionMap` into it for every example the log ``wants`` (only then: nothing is kept
without the callback); after every batch the callback takes the maps out and draws them. So no
file is written from inside a step, and a head never needs to know where run folders are.

Figures use matplotlib's object API (no pyplot state, no display) and are written atomically.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

from seqkit.callbacks import atomic_write


@dataclass
class AttentionMap:
    """The attention of one decoded example, ready to draw."""

    index: int
    """The example's position in its dataset (``batch.index``)."""
    output: list[str]
    """The tokens the decoder wrote (with ``<eos>`` when it ended with one)."""
    weights: torch.Tensor
    """(len(output), S) the attention of each output token over the S memory steps (CPU)."""
    source: Optional[list[str]] = None
    """The S source tokens (a token memory), drawn along the heatmap's x axis."""
    image: Optional[torch.Tensor] = None
    """(3, H, W) floats in [0, 1]: the image whose regions the memory holds."""
    name: Optional[str] = None
    """A name for the file and the title (an image's file), or None."""


class AttentionLog:
    """Collects the :class:`AttentionMap` of the examples ``wants(index)`` accepts."""

    def __init__(self, wants: Callable[[int], bool]) -> None:
        self.wants = wants
        self._maps: list[AttentionMap] = []

    def add(self, amap: AttentionMap) -> None:
        self._maps.append(amap)

    def take(self) -> list[AttentionMap]:
        """The maps collected since the last call (the log is emptied)."""
        maps, self._maps = self._maps, []
        return maps


def plot_attention(path: str, source: list[str], output: list[str], weights: torch.Tensor) -> None:
    """Draw ``weights`` (len(output), len(source)) as a heatmap PNG at ``path``: output tokens
    down, source tokens across."""
    from matplotlib.figure import Figure

    T, S = max(1, len(output)), max(1, len(source))
    fig = Figure(figsize=(min(2 + 0.45 * S, 20), min(1.5 + 0.4 * T, 20)))
    ax = fig.add_subplot()
    ax.imshow(weights.numpy() if weights.numel() else torch.zeros(T, S).numpy(), cmap="Greys", vmin=0.0, vmax=1.0,
              aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(output)), output, fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)


def plot_image_attention(path: str, image, words: list[str], attention, title: str = "", cols: int = 5) -> None:
    """Write one PNG: the image, then one panel per word with its attention map over the image.

    Args:
        path: Output .png file.
        image: (H, W, 3) floats in [0, 1] (a numpy array).
        words: The decoded words (including <eos> when the caption ended with it).
        attention: (len(words), H', W') attention weights over the encoder's grid (numpy).
        title: Text above the figure (the image's name).
        cols: Panels per row.
    """
    from matplotlib.figure import Figure

    H, W = image.shape[:2]
    panels = 1 + len(words)
    rows = math.ceil(panels / cols)
    pw = 2.2 * W / max(H, W)  # panel size in inches, keeping the image's aspect
    ph = 2.2 * H / max(H, W) + 0.3  # + room for the word above it
    fig = Figure(figsize=(cols * pw, rows * ph + 0.3), dpi=100)
    extent = (0, W, H, 0)
    for k in range(rows * cols):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.set_axis_off()
        if k >= panels:
            continue
        ax.imshow(image, extent=extent)
        if k == 0:
            ax.set_title("input", fontsize=9)
            continue
        a = attention[k - 1]
        # each panel scales its own map: a word's attention is a distribution, compare its shape
        ax.imshow(a / max(float(a.max()), 1e-8), cmap="magma", alpha=0.6, extent=extent, interpolation="bilinear",
                  vmin=0, vmax=1)
        ax.set_title(words[k - 1], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png")


Stage = Literal["test", "predict"]


class AttentionPlot(pl.Callback):
    """Draws the attention of chosen test/predict examples as PNGs (``attention_<stage>_<index>.png``).

    Works with any head that has an ``attention_log`` attribute and fills it (the translation and
    captioning heads do). Image maps are drawn over the image, on the encoder's grid of regions
    (the encoder's ``grid`` attribute, (H', W')); token maps as a heatmap over the source.
    """

    def __init__(self, dirpath: Optional[str] = None, indices: Optional[list[int]] = None, max_plots: int = 16,
                 stages: list[Stage] = ["test", "predict"]) -> None:  # noqa: B006 - copied below; a list reads best in --help
        """
        Args:
            dirpath: Folder for the PNGs; null: the run's log folder.
            indices: Examples to draw, by position in the test set or the predict inputs; null:
                the first ``max_plots``.
            max_plots: With ``indices`` null, draw the first this many examples.
            stages: When to draw: "test", "predict" or both.
        """
        super().__init__()
        self.dirpath = dirpath
        self.indices = None if indices is None else {int(i) for i in indices}
        self.max_plots = max_plots
        self.stages = set(stages)
        self.written: list[str] = []
        self._dir: Optional[str] = None
        self._warned = False

    def wants(self, index: int) -> bool:
        return index in self.indices if self.indices is not None else index < self.max_plots

    # -- Lightning hooks ----------------------------------------------------------------------
    def _start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage not in self.stages:
            return
        # trainer.log_dir is a collective call under DDP: every rank asks, here, at the start
        self._dir = self.dirpath or trainer.log_dir or trainer.default_root_dir
        head = getattr(pl_module, "head", None)
        if head is None or not hasattr(head, "attention_log"):
            self._warn(f"seqkit: AttentionPlot: {type(head).__name__} records no attention; no pictures written")
            return
        head.attention_log = AttentionLog(self.wants)

    def _batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        log = getattr(getattr(pl_module, "head", None), "attention_log", None)
        if stage in self.stages and log is not None:
            for amap in log.take():
                self.draw(amap, stage, pl_module)

    def _end(self, pl_module: pl.LightningModule) -> None:
        head = getattr(pl_module, "head", None)
        if head is not None and hasattr(head, "attention_log"):
            head.attention_log = None

    def on_test_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module, "test")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch_end(trainer, pl_module, "test")

    def on_test_end(self, trainer, pl_module) -> None:
        self._end(pl_module)

    def on_predict_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module, "predict")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._batch_end(trainer, pl_module, "predict")

    def on_predict_end(self, trainer, pl_module) -> None:
        self._end(pl_module)

    # -- drawing ------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        if not self._warned:
            rank_zero_warn(message)
            self._warned = True

    def path(self, amap: AttentionMap, stage: str) -> str:
        stem = ""
        if amap.name:
            stem = re.sub(r"[^\w.-]+", "_", os.path.splitext(os.path.basename(str(amap.name)))[0])
        return os.path.join(self._dir or ".", f"attention_{stage}_{amap.index}" + (f"-{stem}" if stem else "") + ".png")

    def draw(self, amap: AttentionMap, stage: str, pl_module: Any) -> Optional[str]:
        """Draw one map; returns the file written (None when the map cannot be drawn)."""
        if amap.image is not None:
            grid = getattr(getattr(pl_module, "encoder", None), "grid", None)
            n, S = amap.weights.shape
            if grid is None or grid[0] * grid[1] != S:
                self._warn("seqkit: AttentionPlot: the image encoder gives no grid of regions (an encoder "
                           "attribute grid = (rows, cols)); no pictures written")
                return None
            path = self.path(amap, stage)
            image = amap.image.float().clamp(0, 1).permute(1, 2, 0).numpy()  # (H, W, 3)
            plot_image_attention(path, image, amap.output, amap.weights.float().view(n, *grid).numpy(),
                                 title=str(amap.name or ""))
        elif amap.source is not None:
            path = self.path(amap, stage)
            plot_attention(path, amap.source, amap.output, amap.weights.float())
        else:
            self._warn("seqkit: AttentionPlot: the attention is over neither source tokens nor an image; "
                       "no pictures written")
            return None
        self.written.append(path)
        return path
