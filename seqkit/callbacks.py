"""Lightning plugins and callbacks seqkit installs: atomic checkpoint writes and the prediction
writer (one output file, in input order, written once even under DDP)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator, Optional

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
