"""Distributed runs fail loudly instead of hanging, and the trainer layers stack on task configs.

A data module that raises on one rank mid-epoch (the other rank is then inside a gradient
all-reduce that will never complete) must make the whole two-process gloo job exit non-zero,
with the user's one-line error shown, well before gloo's 30-minute collective timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import CONFIGS

FAILING_MODULE = '''
import os
from seqkit import DataError
from seqkit.marker import MarkerTaskData


class FailingMarkerData(MarkerTaskData):
    """MarkerTaskData that raises on rank $SEQKIT_TEST_FAIL_RANK from the second training batch on."""

    def collate(self, examples):
        batch = super().collate(examples)
        t = self.trainer
        if t is not None and t.training and t.global_step >= 1 and t.global_rank == int(os.environ["SEQKIT_TEST_FAIL_RANK"]):
            raise DataError(f"injected failure on rank {t.global_rank}")
        return batch
'''

# Far below gloo's 30-minute default: a hang fails the test; generous because CI machines are shared.
HANG_LIMIT_S = 240


@pytest.mark.parametrize("fail_rank", [1, 0])
def test_a_rank_that_raises_ends_the_whole_job(fail_rank, tmp_path):
    (tmp_path / "failing_data.py").write_text(FAILING_MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
           "SEQKIT_TEST_FAIL_RANK": str(fail_rank), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "seqkit", "fit", "--config", str(CONFIGS / "classify.yaml"),
           "--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml"), "--data.class_path=failing_data.FailingMarkerData",
           "--data.init_args.num_train=256", "--data.init_args.num_val=64", "--trainer.max_epochs=1",
           "--trainer.enable_progress_bar=false", "--trainer.logger=false", "--trainer.enable_checkpointing=false"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group, so a hang can be killed whole
    try:
        out, _ = proc.communicate(timeout=HANG_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"rank {fail_rank} raised but the DDP job was still running after {HANG_LIMIT_S} s:\n{out[-3000:]}")
    elapsed = time.monotonic() - start
    assert proc.returncode != 0, f"the job exited 0 although rank {fail_rank} raised:\n{out[-3000:]}"
    assert "MEMBER: 2/2" in out, f"the job did not start two processes:\n{out[-3000:]}"
    assert f"seqkit: error: injected failure on rank {fail_rank}" in out, out[-3000:]
    print(f"rank {fail_rank} raised: job exited {proc.returncode} after {elapsed:.1f} s")


LAYERS = {
    "ddp.yaml": {"devices": "auto", "strategy": "ddp", "num_nodes": 1},
    "ddp_cpu.yaml": {"accelerator": "cpu", "devices": 2},
    "fsdp.yaml": {"accelerator": "gpu", "devices": "auto"},
    "bf16.yaml": {"precision": "bf16-mixed"},
    "fp16.yaml": {"precision": "16-mixed"},
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_trainer_layer_stacks_on_a_task_config(layer, capsys):
    """Each layer parses with the real CLI on top of a task config and sets what it promises,
    without clobbering the task's own trainer settings."""
    from seqkit.cli import main

    path = CONFIGS / "trainer" / layer
    header = path.read_text().splitlines()
    assert header[0].startswith("# ") and any(f"--config configs/trainer/{layer}" in line for line in header), \
        f"{layer} must open with a comment giving the command that uses it"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(CONFIGS / "classify.yaml"), "--config", str(path), "--print_config"])
    assert done.value.code in (0, None)
    trainer = yaml.safe_load(capsys.readouterr().out)["trainer"]
    for key, value in LAYERS[layer].items():
        assert trainer[key] == value, f"{layer}: trainer.{key} is {trainer[key]!r}, expected {value!r}"
    assert trainer["max_epochs"] == yaml.safe_load((CONFIGS / "classify.yaml").read_text())["trainer"]["max_epochs"]
    if layer in ("ddp_cpu.yaml", "fsdp.yaml"):
        strategy = trainer["strategy"]
        assert strategy["class_path"].endswith("DDPStrategy" if layer == "ddp_cpu.yaml" else "FSDPStrategy")
        if layer == "ddp_cpu.yaml":
            assert strategy["init_args"]["process_group_backend"] == "gloo"
