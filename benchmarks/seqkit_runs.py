"""What the real-data benchmarks share: one seqkit seed run as a user runs it - ``seqkit fit``
under a CPU-time budget keeping the best validation checkpoint, then ``seqkit test`` on it -
with the CPU time of both processes, start-up included."""

from __future__ import annotations

import glob
import os
import resource
import subprocess
import sys


def children_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seqkit(args: list[str], env: dict[str, str], who: str) -> str:
    """``python -m seqkit ARGS``; its output, or exit 2 with its error under the name ``who``."""
    run = subprocess.run([sys.executable, "-m", "seqkit", *args], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"{who}: seqkit {' '.join(args[:3])} failed:\n{run.stderr[-3000:]}", file=sys.stderr)
        sys.exit(2)
    return run.stdout + run.stderr


def fit_and_test(config: str, overrides: list[str], seed: int, budget: float, work: str, threads: int,
                 who: str, monitor: str = "val_acc") -> tuple[str, str, float]:
    """Fit ``config`` for ``budget`` CPU-seconds (less 15 for start-up) keeping the checkpoint
    with the best ``monitor`` (higher is better), then test it. Returns the fit's and the test's
    metrics.csv paths and the CPU seconds of both processes."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    layer = os.path.join(work, "budget.yaml")
    with open(layer, "w") as f:  # the config's callbacks plus the budget (a later list replaces the first)
        f.write("trainer:\n  callbacks:\n"
                f"    - class_path: ModelCheckpoint\n      init_args: {{monitor: {monitor}, mode: max}}\n"
                f"    - class_path: seqkit.TimeBudget\n      init_args: {{seconds: {max(budget - 15, 5):.0f}, clock: cpu}}\n")
    name = f"seed{seed}"
    before = children_cpu()
    run_seqkit(["fit", "--config", config, "--config", layer, f"--seed_everything={seed}", *overrides,
                f"--trainer.logger.init_args.save_dir={work}", f"--trainer.logger.init_args.name={name}"], env, who)
    ckpts = sorted(glob.glob(os.path.join(work, name, "version_0", "checkpoints", "*.ckpt")))
    best = [c for c in ckpts if not c.endswith("last.ckpt")] or ckpts
    if not best:
        print(f"{who}: seqkit fit wrote no checkpoint under {os.path.join(work, name)}", file=sys.stderr)
        sys.exit(2)
    run_seqkit(["test", f"--ckpt_path={best[0]}", f"--trainer.logger.init_args.save_dir={work}",
                f"--trainer.logger.init_args.name={name}-test"], env, who)
    cpu = children_cpu() - before
    return (os.path.join(work, name, "version_0", "metrics.csv"),
            os.path.join(work, f"{name}-test", "version_0", "metrics.csv"), cpu)
