"""Shared test helpers: run the real ``seqkit`` command and read what a run logged."""

from __future__ import annotations

import csv
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def run_seqkit(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 240, env: dict | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m seqkit ARGS`` as a user would; fail with its output when ``check`` and it fails."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "seqkit", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"seqkit {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}")
    return proc


def read_metrics(save_dir: str | os.PathLike) -> list[dict]:
    """Rows of the newest metrics.csv a CSVLogger wrote under ``save_dir``."""
    files = sorted(glob.glob(os.path.join(save_dir, "**", "metrics.csv"), recursive=True), key=os.path.getmtime)
    assert files, f"no metrics.csv under {save_dir}"
    with open(files[-1], newline="") as fh:
        return list(csv.DictReader(fh))


def last_value(rows: list[dict], key: str) -> float:
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    assert values, f"{key} was never logged (columns: {sorted(rows[0]) if rows else []})"
    return values[-1]


def logger_args(tmp_path) -> list[str]:
    """Trainer options that keep a run's logs and checkpoints inside ``tmp_path``."""
    return [
        "--trainer.logger=CSVLogger",
        f"--trainer.logger.save_dir={tmp_path}",
        "--trainer.logger.name=run",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]


def ddp_cpu_args() -> list[str]:
    """Trainer options for a two-process CPU DDP run (gloo)."""
    return ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


@pytest.fixture
def root() -> Path:
    return ROOT
