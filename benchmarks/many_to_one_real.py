"""Many-to-one on real data: seqkit against the tools it means to replace, at the same CPU budget.

    python benchmarks/many_to_one_real.py text --threads 1            # Debian package sections
    python benchmarks/many_to_one_real.py text --seeds 1 --budget 120 # a quicker look
    python benchmarks/many_to_one_real.py forecast --budget 240       # benchmarks/many_to_one_forecast.py

``forecast``: AirPassengers, statsmodels' elnino and macrodata unemployment against seasonal
naive, Holt-Winters and SARIMA, single-shot and rolling 1-step (its own docstring has the protocol).

``text``: classify a Debian package's Section from its one-line description. The corpus is this
machine's apt package lists (``/var/lib/apt/lists/*_Packages*``; run ``apt-get update`` first
where there are none), read with apt's own ``apt-helper cat-file`` (any compression apt
writes). Descriptions that occur more than once are kept once, and only when every package
carrying them is in the same section (a description shared across sections has no one label).
The 10 largest sections give 300 / 100 / 200 descriptions each for train / validation / test,
drawn with a fixed seed, so every model sees the same split. The files are cached under
``--cache`` (default ``~/.cache/seqkit-bench``), never in the repository.

- peer: TF-IDF (word 1-2-grams, optionally with character 2-5-grams) + LogisticRegression from
  scikit-learn (``pip install scikit-learn``), its features and C chosen on validation.
- seqkit: ``seqkit fit --config benchmarks/configs/package_sections.yaml`` (chosen on
  validation) with a ``seqkit.TimeBudget`` on CPU time, then ``seqkit test`` on the checkpoint
  with the best validation accuracy; ``--seeds`` seeds (``seed_everything``).

Both get ``--budget`` CPU-seconds per run; each side's CPU time is measured (seqkit's includes its
processes' start-up) and printed beside its test accuracy. Output: one table, then the ratio
seqkit / peer of the mean test accuracies.
"""

from __future__ import annotations

import argparse
import collections
import csv
import glob
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from seqkit_runs import fit_and_test  # noqa: E402
SECTIONS = 10
PER_SECTION = {"train": 300, "val": 100, "test": 200}


def _fail(message: str) -> None:
    print(f"many_to_one_real: {message}", file=sys.stderr)
    sys.exit(2)


# -- the corpus ---------------------------------------------------------------------------------
def _package_lists() -> list[str]:
    found = sorted(p for p in glob.glob("/var/lib/apt/lists/*_Packages*") if not p.endswith(".diff_Index"))
    if not found:
        _fail("no apt package lists in /var/lib/apt/lists; run `apt-get update` first")
    return found


def _stanzas(path: str) -> list[dict[str, str]]:
    helper = "/usr/lib/apt/apt-helper"
    if os.path.exists(helper):
        text = subprocess.run([helper, "cat-file", path], check=True, capture_output=True).stdout.decode("utf-8", "replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line[0].isspace() and ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            out.append(fields)
    return out


def build_sections(cache: str) -> dict[str, str]:
    """Write train/val/test TSVs (text, label) under ``cache``; return their paths."""
    root = os.path.join(cache, "debian-sections")
    paths = {split: os.path.join(root, f"{split}.tsv") for split in PER_SECTION}
    paths["unlabelled"] = os.path.join(root, "unlabelled.txt")
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    sections: dict[str, set[str]] = collections.defaultdict(set)
    for path in _package_lists():
        for fields in _stanzas(path):
            text, section = fields.get("Description", ""), fields.get("Section", "")
            if text and section:
                sections[text].add(section.split("/")[-1])  # "contrib/net" -> "net"
    unique = sorted((text, next(iter(s))) for text, s in sections.items() if len(s) == 1)
    counts = collections.Counter(label for _, label in unique)
    need = sum(PER_SECTION.values())
    top = [label for label, n in counts.most_common(SECTIONS) if n >= need]
    if len(top) < SECTIONS:
        _fail(f"the package lists give only {len(top)} sections with {need} distinct descriptions")
    rng = random.Random(0)
    rows: dict[str, list[tuple[str, str]]] = {split: [] for split in PER_SECTION}
    for label in top:
        texts = [t for t, lab in unique if lab == label]
        rng.shuffle(texts)
        start = 0
        for split, n in PER_SECTION.items():
            rows[split] += [(t, label) for t in texts[start : start + n]]
            start += n
    os.makedirs(root, exist_ok=True)
    # every other description, without labels: text a language model may learn from (never a
    # validation or test description)
    held = {t for split in ("val", "test") for t, _ in rows[split]}
    tmp = paths["unlabelled"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(f"{t}\n" for t in sorted(sections) if t not in held and "\n" not in t)
    os.replace(tmp, paths["unlabelled"])
    for split, items in rows.items():
        rng.shuffle(items)
        tmp = paths[split] + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(["text", "label"])
            writer.writerows(items)
        os.replace(tmp, paths[split])
    return paths


# -- the peer -----------------------------------------------------------------------------------
def tfidf_logreg(paths: dict[str, str], budget: float) -> tuple[float, float, str]:
    """Test accuracy, CPU seconds and the chosen setting of TF-IDF + LogisticRegression."""
    try:
        import pandas as pd
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union
    except ImportError:
        _fail("the peer needs scikit-learn: pip install scikit-learn")
    read = {k: pd.read_csv(p, sep="\t", quoting=csv.QUOTE_MINIMAL, keep_default_na=False)
            for k, p in paths.items() if k in PER_SECTION}
    start = time.process_time()
    best = None
    for feats in ("word", "word+char"):
        for C in (1.0, 3.0, 10.0, 30.0, 100.0):
            if time.process_time() - start > budget:
                break
            parts = [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)]
            if feats == "word+char":
                parts.append(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
            model = make_pipeline(make_union(*parts), LogisticRegression(C=C, max_iter=3000))
            model.fit(read["train"].text, read["train"].label)
            acc = float((model.predict(read["val"].text) == read["val"].label).mean())
            if best is None or acc > best[0]:
                best = (acc, model, f"{feats} n-grams, C={C:g}, val {acc:.3f}")
    test = read["test"]
    acc = float((best[1].predict(test.text) == test.label).mean())
    return acc, time.process_time() - start, best[2]


# -- seqkit -------------------------------------------------------------------------------------
def seqkit_run(config: str, overrides: list[str], seed: int, budget: float, work: str,
               threads: int) -> tuple[float, float]:
    """Test accuracy and CPU seconds (fit and test processes) of one seed."""
    _, test_csv, cpu = fit_and_test(config, overrides, seed, budget, work, threads, "many_to_one_real")
    with open(test_csv) as f:
        row = next(csv.DictReader(f))
    return float(row["test_acc"]), cpu


def _mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def text(args: argparse.Namespace) -> None:
    paths = build_sections(os.path.expanduser(args.cache))
    print(f"corpus: {', '.join(f'{k} {sum(1 for _ in open(paths[k])) - 1}' for k in PER_SECTION)} labelled and "
          f"{sum(1 for _ in open(paths['unlabelled']))} unlabelled descriptions, "
          f"{SECTIONS} sections ({os.path.dirname(paths['train'])})", flush=True)
    peer_acc, peer_cpu, chosen = tfidf_logreg(paths, args.budget)
    print(f"TF-IDF + LogisticRegression: test acc {peer_acc:.4f} in {peer_cpu:.0f} CPU-s ({chosen})", flush=True)
    config = os.path.join(HERE, "configs", "package_sections.yaml")
    overrides = [f"--data.init_args.{k}_file={paths[k]}" for k in PER_SECTION]
    accs, cpus = [], []
    with tempfile.TemporaryDirectory(prefix="seqkit-bench-") as work:
        for seed in range(args.seeds):
            acc, cpu = seqkit_run(config, overrides, seed, args.budget, work, args.threads)
            accs.append(acc)
            cpus.append(cpu)
            print(f"seqkit seed {seed}: test acc {acc:.4f} in {cpu:.0f} CPU-s", flush=True)
    print()
    print(f"| task (test accuracy) | seqkit ({args.seeds} seeds) | CPU-s | TF-IDF + LR | CPU-s | ratio |")
    print("|---|---|---|---|---|---|")
    print(f"| Debian package section, {SECTIONS} classes | {_mean_std(accs)} | {statistics.mean(cpus):.0f} "
          f"| {peer_acc:.4f} | {peer_cpu:.0f} | {statistics.mean(accs) / peer_acc:.3f} |")
    print(f"budget {args.budget:.0f} CPU-s per run, {args.threads} thread(s); load average {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("text", "forecast"), help="which benchmark to run")
    parser.add_argument("--seeds", type=int, default=3, help="seqkit seeds (default: 3)")
    parser.add_argument("--budget", type=float, default=200.0, help="CPU-seconds per run, each side (default: 200)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default: 1)")
    parser.add_argument("--cache", default="~/.cache/seqkit-bench", help="where the corpora are built")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if args.part == "forecast":
        from many_to_one_forecast import main as forecast

        forecast(args)
        return
    text(args)


if __name__ == "__main__":
    main()
