"""Every task config trains under two-process CPU DDP (gloo), and its loss matches a one-process
run on the same global batch: seqkit shards each global batch across ranks, so the two runs see
the same examples in the same steps.

A config opts in with a header line ``# test-overrides: ...`` holding the options that make it
small enough for CI (few examples, no dropout so both runs draw the same random numbers).
"""

from __future__ import annotations

import os
import re

import pytest

from conftest import CONFIGS, ddp_cpu_args, last_value, logger_args, read_metrics, run_seqkit


def _task_configs() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        m = re.search(r"^# test-overrides:(.*)$", path.read_text(), flags=re.M)
        if m:
            found.append((str(path.relative_to(CONFIGS)), m.group(1).split()))
    return found


# DDP sharding is the base class's (SeqDataModule's loaders and LengthBucketSampler), so one
# config per head and input kind covers the code paths; the others add two DDP runs each
# (about 23 s on 2 cores) and no new path. SEQKIT_TEST_ALL=1 runs every config.
REPEATS = {"variants.yaml", "seqclass.yaml", "sentiment.yaml", "vec2seq.yaml", "longlag/reber.yaml",
           "longlag/adding.yaml",  # ManyToOneHead (classify.yaml) on features (forecast.yaml)
           "longlag/copy.yaml", "longlag/temporal_order_6a.yaml", "longlag/temporal_order_6b.yaml"}
TASKS = [t for t in _task_configs() if os.environ.get("SEQKIT_TEST_ALL") or t[0] not in REPEATS]


def test_task_configs_opt_in():
    names = [name for name, _ in TASKS]
    assert "classify.yaml" in names, names


@pytest.mark.parametrize("name,overrides", TASKS, ids=[n for n, _ in TASKS])
def test_ddp_loss_matches_single_process(name, overrides, tmp_path):
    common = ["fit", "--config", str(CONFIGS / name), *overrides,
              "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2",
              "--trainer.enable_checkpointing=false", "--seed_everything=7"]
    batch = 8
    single = tmp_path / "single"
    run_seqkit(*common, f"--data.init_args.loader.batch_size={2 * batch}", f"--data.init_args.loader.eval_batch_size={2 * batch}",
               "--trainer.accelerator=cpu", "--trainer.devices=1", *logger_args(single), cwd=tmp_path)
    ddp = tmp_path / "ddp"
    run_seqkit(*common, f"--data.init_args.loader.batch_size={batch}", f"--data.init_args.loader.eval_batch_size={batch}",
               *ddp_cpu_args(), *logger_args(ddp), cwd=tmp_path, timeout=300)
    one, two = last_value(read_metrics(single), "val_loss"), last_value(read_metrics(ddp), "val_loss")
    assert two == pytest.approx(one, rel=1e-3, abs=1e-4), f"{name}: DDP val_loss {two} vs single-process {one}"
