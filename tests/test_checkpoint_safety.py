"""Checkpoints are safe and resuming is honest.

- A checkpoint never runs code: payloads (bare, or inside a real checkpoint) and truncated files
  are cases of the bad-input corpus (tests/test_bad_input.py); here, real checkpoints carry the task.
- ``fit --ckpt_path last`` continues the newest ``last.ckpt`` of the run (global step and the
  optimizer's state); with none, one line says where it looked.
- Stopping at ``max_steps`` mid-epoch, or by a time budget, saves the final weights.
- SIGKILL at random moments, one inside a checkpoint write: every checkpoint left loads with
  ``weights_only=True``, no temporary file survives the next run, and resuming loses at most one
  checkpoint interval.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import CONFIGS, logger_args, run_seqkit

CONFIG = str(CONFIGS / "classify.yaml")
TINY = ["--data.init_args.num_train=96", "--data.init_args.num_val=32", "--data.init_args.num_test=32",
        "--data.init_args.loader.batch_size=8", "--model.rnn.init_args.hidden_size=8",
        "--model.encoder.init_args.embedding_dim=8"]


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("seqkit: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def _ckpts(root: Path) -> list[Path]:
    return sorted(root.rglob("*.ckpt"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    run_seqkit("fit", "--config", CONFIG, *TINY, "--trainer.max_steps=3", *logger_args(root), cwd=root)
    return root


def test_real_checkpoints_load_safely_and_carry_the_task(trained):
    ckpt = torch.load(_ckpts(trained)[-1], weights_only=True)
    assert ckpt["seqkit"]["head"].endswith("ManyToOneHead") and ckpt["seqkit"]["data"].endswith("MarkerTaskData")
    assert "MarkerTaskData" in ckpt and ckpt["MarkerTaskData"]["labels"]


def test_max_steps_mid_epoch_saves_the_final_step_and_resume_continues(tmp_path):
    run_seqkit("fit", "--config", CONFIG, *TINY, "--trainer.max_steps=5", *logger_args(tmp_path), cwd=tmp_path)
    last = next(tmp_path.rglob("last.ckpt"))
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 5  # 12 batches an epoch: stopped mid-epoch, nothing lost
    run_seqkit("fit", "--config", CONFIG, *TINY, "--trainer.max_steps=9", "--ckpt_path=last", *logger_args(tmp_path),
               cwd=tmp_path)
    newest = max(tmp_path.rglob("last.ckpt"), key=os.path.getmtime)
    resumed = torch.load(newest, weights_only=True)
    assert resumed["global_step"] == 9
    adam = resumed["optimizer_states"][0]["state"]
    assert int(next(iter(adam.values()))["step"]) == 9  # Adam's own count went on, not restarted


def test_resume_last_without_a_checkpoint_names_where_it_looked(tmp_path):
    proc = run_seqkit("fit", "--config", CONFIG, *TINY, "--ckpt_path=last", *logger_args(tmp_path), cwd=tmp_path,
                      check=False)
    line = _one_line_error(proc)
    assert "no last.ckpt" in line and str(tmp_path) in line


def test_time_budget_stops_and_saves(tmp_path):
    layer = tmp_path / "budget.yaml"
    layer.write_text("trainer:\n  callbacks:\n    - class_path: seqkit.TimeBudget\n"
                     "      init_args: {seconds: 0.5, clock: cpu}\n")
    run_seqkit("fit", "--config", CONFIG, "--config", str(layer), *TINY, "--trainer.max_epochs=50",
               *logger_args(tmp_path), cwd=tmp_path)
    saved = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)
    assert 0 < saved["global_step"] < 50 * 12


def _fit(tmp_path: Path, layer: Path, resume: bool, slow_write: bool, max_steps: int = 100_000) -> subprocess.Popen:
    args = [sys.executable, "-m", "seqkit", "fit", "--config", CONFIG, "--config", str(layer), *TINY,
            f"--trainer.max_steps={max_steps}", "--trainer.max_epochs=-1", *logger_args(tmp_path)]
    if resume:
        args.append("--ckpt_path=last")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQKIT_TEST_SLOW_CKPT_WRITE": "0.7" if slow_write else "0"}
    return subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_then_resume(tmp_path):
    layer = tmp_path / "every2.yaml"
    layer.write_text("trainer:\n  callbacks:\n    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
                     "      init_args: {every_n_train_steps: 10, save_last: true, save_top_k: 1}\n")
    rng = random.Random(7)
    step_before = 0
    for kill in range(3):
        in_write = kill == 1  # this kill lands inside a checkpoint write (a .tmp file is open)
        proc = _fit(tmp_path, layer, resume=kill > 0, slow_write=in_write)
        if in_write:
            hit = _wait_for(lambda: any(tmp_path.rglob(".*.tmp")), proc)
            if not hit:
                proc.kill()
                proc.wait()
                raise AssertionError(f"no checkpoint write was seen to kill (exit {proc.returncode}): "
                                     f"{proc.stderr.read()[-3000:]}")
        else:
            # kill at a random moment after this run saved its first checkpoint
            seen = {str(p) for p in tmp_path.rglob("*.ckpt")}
            _wait_for(lambda: any(str(p) not in seen for p in tmp_path.rglob("*.ckpt")), proc)
            time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for ckpt in _ckpts(tmp_path):  # everything left on disk loads, safely
            torch.load(ckpt, map_location="cpu", weights_only=True)
        lasts = list(tmp_path.rglob("last.ckpt"))
        if lasts:
            step = torch.load(max(lasts, key=os.path.getmtime), weights_only=True)["global_step"]
            assert step >= step_before  # never goes back
            step_before = step
    assert step_before > 0
    target = step_before + 20
    final = _fit(tmp_path, layer, resume=True, slow_write=False, max_steps=target)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-3000:]
    assert not list(tmp_path.rglob(".*.tmp")), "a killed write's temporary file survived the next run"
    newest = torch.load(max(tmp_path.rglob("last.ckpt"), key=os.path.getmtime), weights_only=True)
    assert newest["global_step"] == target
    adam = newest["optimizer_states"][0]["state"]
    assert int(next(iter(adam.values()))["step"]) == target
