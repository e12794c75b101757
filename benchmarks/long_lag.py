"""Why LSTMs exist, runnable: the adding problem of Hochreiter & Schmidhuber (1997), experiment 4.

Trains an LSTM and a simple recurrent network (h = tanh(W_h·h₋₁ + W_x·x + b)) on the adding
problem with the same budget of training sequences, through the real ``seqkit fit`` and
``configs/longlag/adding.yaml`` (the two runs differ only in ``model.rnn.class_path``). Every
``--check-every`` batches the success criterion is checked on the validation sequences (2560,
like the paper's test set): solved when the absolute error at the end is below 0.04 on every one.
Prints how many training sequences each net needed, or "not solved", next to the paper's
Table 7 (LSTM: 74,000 sequences at T = 100, 209,000 at T = 500, 853,000 at T = 1000).

    python benchmarks/long_lag.py                       # T = 100, LSTM and SRN (minutes on 2 CPU cores)
    python benchmarks/long_lag.py --seq-len 500 --budget 600000 --models lstm   # hours on CPU
    python benchmarks/long_lag.py --seq-len 1000 --budget 2000000 --models lstm --forget-bias 8

Runs are written under ``--out`` (CSV logs: val_wrong, val_max_abs_err per check).
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "longlag" / "adding.yaml"
PAPER = {100: 74_000, 500: 209_000, 1000: 853_000}  # Table 7: average training sequences to the stop criterion
MODELS = {"lstm": ("LSTM", "LSTMStack"), "srn": ("simple RNN", "SimpleRNNStack")}


def train(model: str, args: argparse.Namespace) -> dict:
    """One ``seqkit fit`` run; returns what its metrics show."""
    name, rnn_class = MODELS[model]
    save_dir = Path(args.out) / f"T{args.seq_len}"
    cmd = [
        sys.executable, "-m", "seqkit", "fit", "--config", str(CONFIG),
        f"--model.rnn.class_path={rnn_class}",
        f"--model.rnn.init_args.hidden_size={args.hidden_size}",
        f"--data.init_args.seq_len={args.seq_len}",
        f"--data.init_args.num_train={args.budget}",
        f"--data.init_args.batch_size={args.batch_size}",
        f"--data.init_args.seed={args.seed}",
        f"--seed_everything={args.seed}",
        f"--trainer.val_check_interval={args.check_every}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_checkpointing=false",
        "--trainer.enable_model_summary=false",
        "--trainer.logger=CSVLogger", f"--trainer.logger.save_dir={save_dir}", f"--trainer.logger.name={model}",
        f"--trainer.default_root_dir={save_dir}",
    ]
    if model == "lstm" and args.forget_bias is not None:
        cmd.append(f"--model.rnn.init_args.forget_bias={args.forget_bias}")
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    log_dir = save_dir / model
    before = set(glob.glob(str(log_dir / "version_*")))
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    save_dir.mkdir(parents=True, exist_ok=True)
    with open(save_dir / f"{model}.stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        checks: list[dict] = []
        solved_at = None
        while True:
            done = proc.poll() is not None
            for row in _new_checks(log_dir, before, len(checks)):
                checks.append(row)
                seen = (int(row["step"]) + 1) * args.batch_size  # "step": batches trained, counted from 0
                print(f"[{name}] {seen:>9,} sequences: {int(float(row['val_wrong'])):>4} of {args.num_val} wrong, "
                      f"max |error| {float(row['val_max_abs_err']):.3f}  ({time.perf_counter() - start:.0f}s)", flush=True)
                if float(row["val_wrong"]) == 0 and solved_at is None:
                    solved_at = seen
            if done:
                break
            time.sleep(2)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(Path(err.name).read_text()[-4000:])
        raise SystemExit(f"{name}: seqkit fit exited {proc.returncode} (log: {err.name})")
    last = checks[-1] if checks else {}
    return {"name": name, "solved_at": solved_at, "seconds": seconds, "cpu": cpu, "wrong": last.get("val_wrong"),
            "max_err": last.get("val_max_abs_err"), "seen": (int(last["step"]) + 1) * args.batch_size if last else 0}


def _new_checks(log_dir: Path, before: set, have: int) -> list[dict]:
    """Validation rows of this run's metrics.csv past the first ``have`` (the file grows as it trains)."""
    runs = [d for d in glob.glob(str(log_dir / "version_*")) if d not in before]
    if not runs or not os.path.exists(os.path.join(runs[0], "metrics.csv")):
        return []
    try:
        with open(os.path.join(runs[0], "metrics.csv"), newline="") as fh:
            rows = [row for row in csv.DictReader(fh) if row.get("val_wrong")]
        for row in rows:
            float(row["val_wrong"]), float(row["val_max_abs_err"]), int(row["step"])
    except (OSError, ValueError, KeyError, csv.Error):  # caught while the logger rewrites it: next time
        return []
    return rows[have:]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq-len", type=int, default=100, help="minimal sequence length T (paper: 100, 500, 1000)")
    p.add_argument("--budget", type=int, default=160_000, help="training sequences each net may see (same for both)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["lstm", "srn"])
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--check-every", type=int, default=100, help="batches between checks of the criterion")
    p.add_argument("--forget-bias", type=float, default=None, help="LSTM forget-gate bias (default: the config's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "runs" / "long_lag"), help="folder for the runs' logs")
    args = p.parse_args(argv)
    args.num_val = 2560

    results = [train(model, args) for model in args.models]
    T = args.seq_len
    print()
    print(f"Adding problem, T = {T}: training sequences until |error| < 0.04 on all {args.num_val} validation sequences")
    print(f"(same budget for every net: {args.budget:,} sequences, batch {args.batch_size}, hidden {args.hidden_size}, "
          f"checked every {args.check_every * args.batch_size:,})")
    print(f"{'net':<12}{'sequences':>14}{'wall':>8}{'cpu':>8}   at the end")
    for r in results:
        solved = f"{r['solved_at']:,}" if r["solved_at"] else "not solved"
        end = f"{int(float(r['wrong']))} wrong, max |error| {float(r['max_err']):.3f} after {r['seen']:,}" if r["wrong"] else "-"
        print(f"{r['name']:<12}{solved:>14}{r['seconds']:>7.0f}s{r['cpu']:>7.0f}s   {end}")
    paper = ", ".join(f"{n:,} at T = {t}" for t, n in PAPER.items())
    ref = f"{PAPER[T]:,}" if T in PAPER else "-"
    print(f"{'paper LSTM':<12}{ref:>14}{'':>16}   Hochreiter & Schmidhuber 1997, Table 7: {paper}")


if __name__ == "__main__":
    main()
