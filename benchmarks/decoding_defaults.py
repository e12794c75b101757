"""Greedy or beam, and which beam: each decoding config's default, chosen on validation.

    python benchmarks/decoding_defaults.py                        # captioning, translation, vec2seq
    python benchmarks/decoding_defaults.py captioning --beams 1 3 5

For each config: ``seqkit fit --config configs/<name>.yaml`` as shipped (in a scratch folder; the
run keeps ``best.ckpt`` by validation BLEU), then ``seqkit validate --ckpt_path best`` once per
beam size with ``--model.head.init_args.val_beam_size=K``: the validation BLEU of each beam size
on the same checkpoint. The test split is never read. Output, per config:

    <config>  beam 1: <bleu>  beam 3: <bleu>  ...   best on validation: beam <K>

The config's ``beam_size`` should be that K; its header states the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
METRIC = {"captioning": "val_bleu4", "vec2seq": "val_bleu4", "translation": "val_bleu"}


def seqkit(args: list[str], cwd: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, "-m", "seqkit", *args, "--trainer.enable_progress_bar=false"],
                          cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"decoding_defaults: seqkit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=list(METRIC), help=f"configs to check (default: {' '.join(METRIC)})")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5], help="beam sizes (default: 1 3 5)")
    args = parser.parse_args()
    for name in args.configs:
        config = os.path.join(ROOT, "configs", f"{name}.yaml")
        with tempfile.TemporaryDirectory() as work:
            t0 = time.time()
            seqkit(["fit", "--config", config], work)
            fit_wall = time.time() - t0
            scores = {}
            for k in args.beams:
                out = seqkit(["validate", "--config", config, "--ckpt_path", "best",
                              f"--model.head.init_args.val_beam_size={k}"], work)
                m = re.search(rf"^\s*{re.escape(METRIC[name])}\s+([0-9.]+)", out, flags=re.M)
                if not m:
                    sys.exit(f"decoding_defaults: no {METRIC[name]} in the validate output of {name}:\n{out[-2000:]}")
                scores[k] = float(m.group(1))
        top = max(scores.values())
        best = [k for k, v in scores.items() if v == top]
        line = "  ".join(f"beam {k}: {v:.4f}" for k, v in scores.items())
        print(f"{name:12s} {METRIC[name]}  {line}   best on validation: beam {' = '.join(map(str, best))}"
              f"   (fit {fit_wall / 60:.1f} min wall)", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
