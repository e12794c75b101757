"""``ForecastPlot``: a callback that draws `seqkit predict`'s forecasts as a PNG beside the CSV.

The picture is drawn from what `seqkit predict` returned (the forecast records: time, forecast and,
where the data has them, the actual values) over the history of each target, which the data
module reads from the series it forecast from. It is written once, by rank zero, through ``atomic_write``.
"""

from __future__ import annotations

import os
from typing import Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

from seqkit import PredictionWriter, atomic_write


class ForecastPlot(pl.Callback):
    """Draws history, forecast and actuals to a PNG after `seqkit predict`."""

    def __init__(self, output: Optional[str] = None, history: int = 0) -> None:
        """
        Args:
            output: PNG file to write; default: the prediction CSV's path with .png, or
                forecast.png in the run's log directory.
            history: Past points to show before the first forecast (0: the whole series).
        """
        super().__init__()
        self.output, self.history = output, history
        self._records: list[dict] = []
        self.written: str | None = None

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._records = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._records.extend(outputs or [])

    def _path(self, trainer) -> str:
        if self.output:
            return self.output
        for cb in trainer.callbacks:
            if isinstance(cb, PredictionWriter) and cb.output:
                return os.path.splitext(cb.output)[0] + ".png"
        return os.path.join(trainer.log_dir or trainer.default_root_dir, "forecast.png")

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        records = self._records
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        data = trainer.datamodule
        if not trainer.is_global_zero or not records or not hasattr(data, "history"):
            return
        unique = {int(r["index"]): r for r in records}
        rows = [unique[i] for i in sorted(unique)]
        times, values = data.history()
        names = list(getattr(data.spec, "targets", None) or ["value"])
        path = self._path(trainer)
        draw(path, times, values, names, rows, self.history)
        self.written = path
        rank_zero_info(f"seqkit: wrote forecast plot to {path}")


def draw(path: str, times: list[str], values, names: list[str], rows: list[dict], history: int = 0) -> None:
    """Plot each target's history with the forecast rows (time, forecast, actual) over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    position = {t: k for k, t in enumerate(times)}
    extra: dict[str, int] = {}  # times past the end of the data get the next free positions
    for r in rows:
        if r["time"] not in position and r["time"] not in extra:
            extra[r["time"]] = len(times) + len(extra)
    where = {**position, **extra}
    first = min(where[r["time"]] for r in rows)
    start = max(0, first - history) if history else 0
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3.5 * len(names)), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[:, 0], names)):
        mine = [r for r in rows if r.get("series", name) == name]
        end = min(first, len(times))  # history up to the first forecast; later values show as actuals
        ax.plot(list(range(start, end)), values[start:end, j], color="0.35", lw=1.2, label="history")
        fx = [where[r["time"]] for r in mine]
        ax.plot(fx, [r["forecast"] for r in mine], "o-", color="tab:red", ms=3, lw=1.5, label="forecast")
        known = [(where[r["time"]], r["actual"]) for r in mine if r["actual"] != ""]
        if known:
            ax.plot(*zip(*known), "s-", color="tab:blue", ms=3, lw=1, label="actual")
        labels = times + list(extra)
        ticks = list(range(start, len(labels), max(1, (len(labels) - start) // 10)))
        ax.set_xticks(ticks, [labels[k] for k in ticks], rotation=30, ha="right", fontsize=8)
        ax.set_title(name)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
