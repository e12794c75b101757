"""Lightning plugins and callbacks seqkit installs: atomic checkpoint writes, the prediction
writer (one output file, in input order, written once even under DDP), a final ``last.ckpt``
however training stops, and a compute-budget callback."""

from __future__ import annotations

import csv
import glob
import json
import os
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Iterator, Literal, Optional

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info


@contextmanager
def atomic_write(path: str, mode: str = "w", **kwargs) -> Iterator[Any]:
    """Open a temporary file next to ``path`` and move it into place only once fully written,
    so a crash never leaves a half-written file behind."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it into place."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Optional[Any] = None) -> None:
        path = os.fspath(path)
        if "://" in path:  # remote file systems: leave it to fsspec
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_write(path, "wb") as fh:
            torch.save(checkpoint, fh)
            delay = float(os.environ.get("SEQKIT_TEST_SLOW_CKPT_WRITE", "0") or 0)
            if delay:  # tests only: hold the write open so a kill can land inside it
                time.sleep(delay)


class PredictionWriter(BasePredictionWriter):
    """Writes the head's prediction records to one file, in input order.

    The format follows the extension: ``.csv`` (one column per field), ``.jsonl`` (one JSON
    object per line) or ``.txt`` (the ``text`` field only, one line per input). A head that
    defines ``write_predictions(path, records)`` writes the file itself instead (records are
    gathered from all ranks, deduplicated and ordered first; it runs on rank zero only).
    """

    def __init__(self, output: Optional[str] = None) -> None:
        """
        Args:
            output: File to write predictions to (.csv, .jsonl or .txt). Default:
                predictions.<format of the head> in the run's log directory.
        """
        super().__init__(write_interval="epoch")
        self.output = output
        self.written: str | None = None

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions, batch_indices) -> None:
        records = [r for batch in predictions for r in (batch or [])]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, records)
            records = [r for part in gathered for r in part]
        if not trainer.is_global_zero:
            return
        unique: dict[int, dict] = {}
        for r in records:  # DDP pads shards with repeated examples: keep one of each
            unique.setdefault(int(r["index"]), r)
        ordered = [unique[i] for i in sorted(unique)]
        path = self.output or os.path.join(
            trainer.log_dir or trainer.default_root_dir,
            f"predictions.{getattr(pl_module.head, 'prediction_format', 'csv')}",
        )
        # a head may lay out its own files (one row per frame, a picture beside them)
        getattr(pl_module.head, "write_predictions", write_records)(path, ordered)
        self.written = path
        rank_zero_info(f"seqkit: wrote {len(ordered)} predictions to {path}")


def write_records(path: str, records: list[dict]) -> None:
    """Write prediction records to ``path`` atomically, in the format its extension names."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".txt":
        with atomic_write(path, encoding="utf-8") as fh:
            for r in records:
                fh.write(f"{r.get('text', '')}\n")
    elif ext == ".jsonl":
        with atomic_write(path, encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif ext == ".csv":
        fields: list[str] = []
        for r in records:
            fields += [k for k in r if k not in fields]
        with atomic_write(path, encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(records)
    else:
        from seqkit.errors import SeqkitError

        raise SeqkitError(f"prediction.output: unknown format {ext or path!r}; use .csv, .jsonl or .txt")


# -- stopping early, honestly ---------------------------------------------------------------------
def _checkpoint_dir(trainer: pl.Trainer) -> Optional[str]:
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    return os.fspath(dirpath) if dirpath else None


_STARTED = time.time()


def remove_stale_temp_files(directory: str, older_than: float | None = None) -> list[str]:
    """Delete the temporary files that writes killed part-way left in ``directory``
    (:func:`atomic_write` names them ``.<name>.<random>.tmp``), last modified before
    ``older_than`` (default: when this process started, so no live write is touched); returns
    their paths."""
    older_than = _STARTED if older_than is None else older_than
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                if os.path.getmtime(path) < older_than:
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                pass
    return removed


class SaveOnStop(pl.Callback):
    """Writes a final ``last.ckpt`` (atomically) however training ends: at the last epoch, when a
    callback stops it (early stopping, :class:`TimeBudget`), at ``max_steps`` or ``max_time``
    mid-epoch, on SIGTERM and on Ctrl-C. Also removes temporary files that killed checkpoint
    writes left behind, when the checkpoint folder is next used. seqkit adds it to every fit."""

    interrupted = False  # set when Ctrl-C stopped the run, so the command exits 130

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        if callback is not None and getattr(callback, "save_last", False) is None:
            callback.save_last = True  # `fit --ckpt_path last` resumes from it
        directory = _checkpoint_dir(trainer)
        if directory and trainer.is_global_zero:
            # this run's folder and its earlier versions (runs/<name>/version_*/checkpoints)
            run_root = os.path.dirname(os.path.dirname(os.path.abspath(directory)))
            folders = {directory, *glob.glob(os.path.join(glob.escape(run_root), "version_*", "checkpoints"))}
            removed = [p for folder in sorted(folders) for p in remove_stale_temp_files(folder)]
            if removed:
                rank_zero_info(f"seqkit: removed {len(removed)} unfinished checkpoint write(s): {', '.join(removed)}")

    def _save(self, trainer: pl.Trainer) -> None:
        directory = _checkpoint_dir(trainer)
        if directory is None or trainer.global_step == 0:
            return
        path = os.path.join(directory, "last.ckpt")
        trainer.save_checkpoint(path, weights_only=False)  # a full checkpoint: resume needs the optimizer
        rank_zero_info(f"seqkit: saved {path} at step {trainer.global_step}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            SaveOnStop.interrupted = isinstance(exception, KeyboardInterrupt)
            self._save(trainer)


class TimeBudget(pl.Callback):
    """Stops training once ``seconds`` of CPU or wall-clock time have passed since fit started,
    after the batch that crossed it; :class:`SaveOnStop` then writes ``last.ckpt``. Use it to
    train at a fixed compute budget (``trainer.callbacks: [{class_path: seqkit.TimeBudget,
    init_args: {seconds: 600, clock: cpu}}]``)."""

    def __init__(self, seconds: float, clock: Literal["cpu", "wall"] = "wall") -> None:
        """
        Args:
            seconds: The budget, in seconds (> 0).
            clock: "cpu": this process's CPU time (time.process_time: fair on a shared machine);
                "wall": elapsed time.
        """
        from seqkit.errors import SeqkitError

        if seconds <= 0 or clock not in ("cpu", "wall"):
            raise SeqkitError(f"TimeBudget: seconds must be > 0 and clock cpu or wall (got {seconds}, {clock!r})")
        self.seconds, self.clock = float(seconds), clock
        self._start: Optional[float] = None

    def _now(self) -> float:
        return time.process_time() if self.clock == "cpu" else time.monotonic()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._now()

    def elapsed(self) -> float:
        return 0.0 if self._start is None else self._now() - self._start

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        over = self.elapsed() >= self.seconds
        if trainer.world_size > 1:  # every rank stops at the same step
            over = trainer.strategy.reduce_boolean_decision(over, all=False)
        if over and not trainer.should_stop:
            trainer.should_stop = True
            rank_zero_info(f"seqkit: time budget of {self.seconds:g} {self.clock} seconds reached at step {trainer.global_step}")


def default_callbacks() -> list[pl.Callback]:
    """The callbacks seqkit adds to every run."""
    return [SaveOnStop()]
