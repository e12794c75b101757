"""Kernel time and page faults of a short video fit: seqkit as shipped against glibc's default
allocator settings (``SEQKIT_MALLOC=system``), each run as a user runs it.

    python benchmarks/video_memory.py                 # configs/video.yaml, 120 steps, 3 pairs
    python benchmarks/video_memory.py --steps 60 --pairs 1

Each run is ``seqkit fit --config configs/video.yaml --trainer.max_steps=N`` (no validation)
in a child process with ``OMP_NUM_THREADS=1``; its user and system CPU seconds and minor page
faults come from ``getrusage(RUSAGE_CHILDREN)``. The runs alternate (the order
flips every pair). Output: one line per run, then the medians and the ratio shipped / system of
system time and of page faults:

    system time  <shipped> s vs <default> s   ratio <r>
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run(steps: int, malloc: str, work: str) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEQKIT_MALLOC": malloc}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "seqkit", "fit", "--config", os.path.join(ROOT, "configs", "video.yaml"),
                    f"--trainer.max_steps={steps}", "--trainer.limit_val_batches=0",
                    "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={work}"],
                   env=env, check=True, capture_output=True, cwd=work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
            "faults": after.ru_minflt - before.ru_minflt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=120, help="training steps per run (default 120)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs (default 3)")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"shipped": [], "system": []}
    with tempfile.TemporaryDirectory() as work:
        for k in range(args.pairs):
            for malloc in (("", "system") if k % 2 == 0 else ("system", "")):
                r = run(args.steps, malloc, work)
                name = "system" if malloc else "shipped"
                results[name].append(r)
                print(f"{name:8s} user {r['user']:6.2f} s  sys {r['sys']:5.2f} s  minor faults {r['faults']:>9,d}", flush=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    s, d = med["shipped"], med["system"]
    print(f"system time  {s['sys']:.2f} s vs {d['sys']:.2f} s   ratio {s['sys'] / d['sys']:.2f}")
    print(f"page faults  {s['faults']:,.0f} vs {d['faults']:,.0f}   ratio {s['faults'] / d['faults']:.2f}")
    print(f"kernel share of CPU  {s['sys'] / (s['sys'] + s['user']):.1%} vs {d['sys'] / (d['sys'] + d['user']):.1%}")
    print(f"({args.steps} steps of configs/video.yaml, 1 thread; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
