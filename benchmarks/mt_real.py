"""Translation on a real corpus, English -> German: seqkit against eole 0.6.4 at the same CPU budget.

    python benchmarks/mt_real.py                          # eole (1 seed), then seqkit (3 seeds), 640 CPU-s each
    python benchmarks/mt_real.py --only-corpus            # build the corpus, print its size and samples
    python benchmarks/mt_real.py --skip-eole              # seqkit only; the table uses the cached eole figures
    python benchmarks/mt_real.py --skip-seqkit            # eole only (writes the cache the line above reads)
    python benchmarks/mt_real.py --budget 60 --seeds 1    # a quick end-to-end look
    python benchmarks/mt_real.py --skip-eole --seqkit-args "--model.head.init_args.dropout=0.2"

The corpus: the German message catalogs of Debian packages (coreutils, tar, grep, sed, findutils,
diffutils, wget, dpkg, apt, util-linux, e2fsprogs, glibc, bash, ...: ``PACKAGES``), fetched with
``apt-get download`` and unpacked with ``dpkg-deb -x`` under ``--cache`` (default
``~/.cache/seqkit-bench/mt``), never in the repository. Each ``de/LC_MESSAGES/*.mo`` is read with
the standard library's ``gettext.GNUTranslations``: msgid -> msgstr, the header skipped, plurals by
their singular form, message contexts stripped. Kept: short UI strings (at most 3 lines and 30
words a side, whitespace collapsed, ``&File`` / ``_File`` accelerators removed) whose two sides
carry the same printf placeholders (``%s``, ``%d``, ``%1$s``, ... as a multiset, positions
ignored), that are translated (target != source) and that have a letter; one target per source;
sources equal up to case stay in one split. ``--data-seed`` draws 1,000 validation and 1,000 test
pairs, the rest is training. The pairs are source<TAB>target TSVs, for both systems.

- peer: eole 0.6.4 (OpenNMT-py's successor) in its own venv (``--eole-venv``, default
  ``~/.cache/seqkit-bench/eole-venv``: ``python -m venv --system-site-packages`` and
  ``pip install eole==0.6.4 aiohttp``, reusing the installed torch). A joint 8k SentencePiece
  model is trained on the training pairs (both sides), the files are encoded to pieces and eole
  trains on them (``benchmarks/configs/eole_rnn.yaml``: 2-layer BiLSTM encoder, 2-layer LSTM
  decoder, Luong general attention, input feeding, 256 wide, Adam 1e-3, 64 sentences a batch,
  dropout 0.3, a checkpoint every 50 steps). The script polls the CPU time of the ``eole train``
  process tree and interrupts it when SentencePiece + training reach the budget; the newest
  checkpoint is decoded (``eole predict``) and the pieces joined back with SentencePiece.
- seqkit: ``seqkit fit --config configs/translation_real.yaml`` with a ``seqkit.TimeBudget``
  (``clock: cpu``, the budget less ``--margin`` for start-up) appended to the config's callbacks,
  then ``seqkit predict`` on the checkpoint fit wrote (``last.ckpt``), ``--seeds`` seeds. Until
  that config exists, ``configs/translation.yaml`` with BPE tokenisers stands in (said so).

Both decode the test sources with beam 5 and greedily (beam 1). Scores: sacrebleu BLEU (13a),
chrF, chrF++ and the length ratio (hypothesis / reference length, from BLEU) against the raw
references; "copy the source" is the floor. CPU-s is training (each side's processes, start-up
and tokeniser training included) + that decoding, summed over threads and child processes.
eole's figures are cached (``--cache``/results) so ``--skip-eole`` still prints them, marked so.
One thread each (``--threads``). The default run is sequential: eole and seqkit each at
``--budget`` on one core (about 35-45 min in all on 2 cores). Running ``--skip-seqkit`` and
``--skip-eole`` in two shells at once halves the wall time; the CPU budget keeps it fair in
compute, but the two share caches and memory bandwidth, so each gets a little less done per
CPU-second than alone.
"""

from __future__ import annotations

import argparse
import collections
import gettext
import glob
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# the Debian packages whose German catalogs make the corpus (binary packages: some ship their
# translations in a separate -l10n / -locales package)
PACKAGES = ["coreutils", "tar", "grep", "sed", "findutils", "diffutils", "wget", "dpkg", "apt",
            "util-linux-locales", "e2fsprogs-l10n", "libc-l10n", "bash", "cpio", "gawk", "make",
            "nano", "procps", "login", "xz-utils", "psmisc"]
SPLIT = {"val": 1000, "test": 1000}
MAX_WORDS, MAX_LINES = 30, 3
DEFAULT_CONFIG = "configs/translation_real.yaml"
FALLBACK_CONFIG = "configs/translation.yaml"
FALLBACK_ARGS = ["--data.init_args.source_tokenizer=bpe", "--data.init_args.target_tokenizer=bpe",
                 "--trainer.max_epochs=1000"]


def _fail(message: str) -> None:
    print(f"mt_real: {message}", file=sys.stderr)
    sys.exit(2)


def _say(message: str) -> None:
    print(message, flush=True)


# -- the corpus ---------------------------------------------------------------------------------
_PRINTF = re.compile(r"%(?:\d+\$)?[-+ #0']*(?:\*(?:\d+\$)?|\d+)?(?:\.(?:\*(?:\d+\$)?|\d+))?"
                     r"(?:hh|h|ll|l|L|q|j|z|Z|t)?[diouxXeEfFgGaAcCsSpnm%]")
_POSITION = re.compile(r"\d+\$")


def placeholders(text: str) -> collections.Counter:
    """The printf conversions of ``text`` as a multiset, positions (``%1$s`` -> ``%s``) ignored."""
    return collections.Counter(_POSITION.sub("", m) for m in _PRINTF.findall(text))


def clean(text: str) -> str | None:
    """One line of text, accelerators removed; None for long (multi-line) messages."""
    if text.count("\n") >= MAX_LINES:
        return None
    text = re.sub(r"&(?=[^\W\d_])", "", text)  # "&File" -> "File" ("a && b", "&%s" stay)
    text = re.sub(r"(?:^|(?<=\s))_(?=[^\W\d_])", "", text)  # "_File" -> "File" ("foo_bar" stays)
    return " ".join(text.split())


def read_catalog(path: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a .mo file: header skipped, plurals by their singular form,
    message contexts (``ctxt\\x04msgid``) stripped."""
    with open(path, "rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog
    pairs = []
    for key, value in catalog.items():
        if isinstance(key, tuple):
            if key[1] != 0:
                continue
            key = key[0]
        if not key:
            continue  # the header
        pairs.append((key.split("\x04", 1)[-1], value))
    return pairs


def _fetch(root: str) -> dict[str, str]:
    """Download and unpack ``PACKAGES``; return package -> unpacked folder."""
    debs, unpacked = os.path.join(root, "debs"), os.path.join(root, "unpacked")
    os.makedirs(debs, exist_ok=True)
    missing = [p for p in PACKAGES if not glob.glob(os.path.join(debs, f"{p}_*.deb"))]
    if missing:
        run = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)
        still = [p for p in missing if not glob.glob(os.path.join(debs, f"{p}_*.deb"))]
        if still:
            _fail(f"apt-get download failed for {', '.join(still)} (run `apt-get update` first?):\n{run.stderr[-2000:]}")
    out = {}
    for pkg in PACKAGES:
        deb = sorted(glob.glob(os.path.join(debs, f"{pkg}_*.deb")))[-1]
        dest = os.path.join(unpacked, os.path.basename(deb)[:-4])
        if not os.path.exists(os.path.join(dest, ".done")):
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
            subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
            open(os.path.join(dest, ".done"), "w").close()
        out[pkg] = dest
    return out


def build_corpus(cache: str, data_seed: int) -> dict[str, str]:
    """Write train/val/test TSVs (source<TAB>target) and test.src / test.ref; return their paths."""
    root = os.path.join(cache, "mt")
    folder = os.path.join(root, f"corpus-seed{data_seed}")
    paths = {s: os.path.join(folder, f"{s}.tsv") for s in ("train", "val", "test")}
    paths.update(src=os.path.join(folder, "test.src"), ref=os.path.join(folder, "test.ref"),
                 manifest=os.path.join(folder, "manifest.json"))
    if all(os.path.exists(p) for p in paths.values()):
        with open(paths["manifest"]) as f:
            if json.load(f).get("package_list") == PACKAGES:
                return paths
    groups: dict[str, list[tuple[str, str]]] = {}  # casefolded source -> its pairs
    seen: set[str] = set()
    dropped, kept, catalogs = collections.Counter(), collections.Counter(), []
    for pkg, dest in _fetch(root).items():
        for mo in sorted(glob.glob(os.path.join(dest, "usr/share/locale/de/LC_MESSAGES/*.mo"))):
            try:
                pairs = read_catalog(mo)
            except (UnicodeDecodeError, OSError) as exc:  # a catalog not in UTF-8: rare, skipped
                print(f"mt_real: skipped {mo}: {exc}", file=sys.stderr)
                continue
            catalogs.append(f"{pkg}:{os.path.basename(mo)}")
            for raw_src, raw_tgt in pairs:
                src, tgt = clean(raw_src), clean(raw_tgt)
                if src is None or tgt is None:
                    dropped["long (lines)"] += 1
                elif not src or not tgt:
                    dropped["empty"] += 1
                elif len(src.split()) > MAX_WORDS or len(tgt.split()) > MAX_WORDS:
                    dropped["long (words)"] += 1
                elif not re.search(r"[^\W\d_]", src):
                    dropped["no letter"] += 1
                elif src == tgt:
                    dropped["untranslated"] += 1
                elif placeholders(src) != placeholders(tgt):
                    dropped["placeholders differ"] += 1
                elif src in seen:
                    dropped["duplicate source"] += 1
                else:
                    seen.add(src)
                    groups.setdefault(src.casefold(), []).append((src, tgt))
                    kept[pkg] += 1
    order = list(groups)
    random.Random(data_seed).shuffle(order)
    rows: dict[str, list[tuple[str, str]]] = {"val": [], "test": [], "train": []}
    for key in order:
        split = next((s for s, n in SPLIT.items() if len(rows[s]) < n), "train")
        rows[split] += groups[key]
    if len(rows["train"]) < 1000:
        _fail(f"only {sum(map(len, rows.values()))} pairs: too few for a {SPLIT} split")
    os.makedirs(folder, exist_ok=True)

    def write(path: str, lines: list[str]) -> None:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        os.replace(path + ".tmp", path)

    for split, items in rows.items():
        write(paths[split], [f"{s}\t{t}" for s, t in items])
    write(paths["src"], [s for s, _ in rows["test"]])
    write(paths["ref"], [t for _, t in rows["test"]])
    manifest = {"package_list": PACKAGES, "packages": sorted(os.path.basename(d) for d in _fetch(root).values()), "catalogs": catalogs,
                "kept": dict(kept), "dropped": dict(dropped), "sizes": {s: len(r) for s, r in rows.items()},
                "data_seed": data_seed}
    write(paths["manifest"], [json.dumps(manifest, indent=1)])
    return paths


def read_pairs(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]


def describe_corpus(paths: dict[str, str], samples: int = 0) -> None:
    with open(paths["manifest"]) as f:
        manifest = json.load(f)
    sizes, dropped = manifest["sizes"], manifest["dropped"]
    train = read_pairs(paths["train"])
    words = statistics.mean(len(s.split()) for s, _ in train)
    _say(f"corpus: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} en-de pairs "
         f"({sum(sizes.values())} in all; {len(manifest['catalogs'])} catalogs of {len(manifest['packages'])} "
         f"Debian packages; {words:.1f} source words a pair on average) in {os.path.dirname(paths['train'])}")
    if samples:
        _say("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1])))
        _say("kept by package: " + ", ".join(f"{k} {v}" for k, v in manifest["kept"].items()))
        for src, tgt in random.Random(1).sample(read_pairs(paths["test"]), samples):
            _say(f"  {src}  =>  {tgt}")


# -- scoring ------------------------------------------------------------------------------------
def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    from sacrebleu.metrics import BLEU, CHRF

    if len(hyps) != len(refs):
        _fail(f"{len(hyps)} translations for {len(refs)} references")
    bleu = BLEU().corpus_score(hyps, [refs])
    return {"bleu": bleu.score, "chrf": CHRF().corpus_score(hyps, [refs]).score,
            "chrfpp": CHRF(word_order=2).corpus_score(hyps, [refs]).score,
            "len_ratio": bleu.sys_len / bleu.ref_len}


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


# -- CPU time -----------------------------------------------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a live process and its descendants (reaped children included)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, list[int]] = collections.defaultdict(list)
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17)
        parents[int(fields[1])].append(int(entry))
        times[int(entry)] = sum(int(x) for x in fields[11:15]) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo += parents.get(p, [])
    return total


def _env(threads: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                OPENBLAS_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false")


# -- eole ---------------------------------------------------------------------------------------
def _sentencepiece(paths: dict[str, str], work: str, vocab_size: int) -> dict[str, str]:
    """Train a joint SentencePiece model on the training pairs, encode the files to pieces and
    write eole's vocabulary (piece<TAB>count); return the files. Runs in eole's venv (which has
    ``sentencepiece``): ``python mt_real.py --spm-prepare PATHS.json WORK VOCAB_SIZE``."""
    import sentencepiece as spm

    train = read_pairs(paths["train"])
    both = os.path.join(work, "spm-train.txt")
    with open(both, "w", encoding="utf-8") as f:
        f.writelines(f"{side}\n" for pair in train for side in pair)
    prefix = os.path.join(work, "spm")
    spm.SentencePieceTrainer.train(input=both, model_prefix=prefix, vocab_size=vocab_size, character_coverage=1.0,
                                   model_type="unigram", num_threads=1, hard_vocab_limit=False,
                                   minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    out, counts = {"model": prefix + ".model"}, collections.Counter()
    for split in ("train", "val"):
        pairs = train if split == "train" else read_pairs(paths[split])
        for side, col in (("src", 0), ("tgt", 1)):
            out[f"{split}.{side}"] = os.path.join(work, f"{split}.sp.{side}")
            with open(out[f"{split}.{side}"], "w", encoding="utf-8") as f:
                for pair in pairs:
                    pieces = sp.encode(pair[col], out_type=str)
                    if split == "train":
                        counts.update(pieces)
                    f.write(" ".join(pieces) + "\n")
    out["test.src"] = os.path.join(work, "test.sp.src")
    with open(out["test.src"], "w", encoding="utf-8") as f:
        f.writelines(" ".join(sp.encode(line, out_type=str)) + "\n" for line in _lines(paths["src"]))
    out["vocab"] = os.path.join(work, "vocab.txt")
    with open(out["vocab"], "w", encoding="utf-8") as f:
        f.writelines(f"{piece}\t{n}\n" for piece, n in counts.most_common())
    return out


def _spm_decode(model: str, pieces: str, out: str) -> None:
    """Join eole's output pieces back into text (in eole's venv: ``--spm-decode``)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(sp.decode(line.split()) + "\n" for line in _lines(pieces))


def _in_venv(venv: str, args: list[str], threads: int) -> None:
    """Run this file's --spm-* helpers with eole's venv python (its CPU time is a child's)."""
    run = subprocess.run([os.path.join(venv, "bin", "python"), os.path.abspath(__file__), *args],
                         env=_env(threads), capture_output=True, text=True)
    if run.returncode != 0:
        _fail(f"{' '.join(args[:1])} failed:\n{run.stderr[-3000:]}")


def _eole(venv: str, args: list[str], threads: int, log: str, **popen) -> subprocess.Popen:
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        _fail(f"no eole venv at {venv}: python -m venv --system-site-packages {venv} && "
              f"{venv}/bin/pip install eole==0.6.4 aiohttp")
    boot = (f"import sys, torch; torch.set_num_threads({threads}); torch.set_num_interop_threads(1); "
            "from eole.bin.main import main; sys.argv = ['eole'] + sys.argv[1:]; sys.exit(main())")
    out = open(log, "w")
    return subprocess.Popen([python, "-c", boot, *args], env=_env(threads), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, **popen)


def _tail(path: str, n: int = 3000) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-n:]


def eole_run(paths: dict[str, str], config_path: str, venv: str, seed: int, budget: float, work: str,
             threads: int) -> dict:
    """Train at ``budget`` CPU-seconds (SentencePiece included), decode beam 5 and greedy, score."""
    import yaml

    os.makedirs(work, exist_ok=True)
    with open(config_path) as f:
        config = yaml.safe_load(f)
    with open(os.path.join(work, "paths.json"), "w") as f:
        json.dump(paths, f)
    before = _children_cpu()
    _in_venv(venv, ["--spm-prepare", os.path.join(work, "paths.json"), work, "8000"], threads)
    prep_cpu = _children_cpu() - before
    with open(os.path.join(work, "files.json")) as f:
        files = json.load(f)
    model_dir = os.path.join(work, "model")
    config.update(seed=seed, src_vocab=files["vocab"], tgt_vocab=files["vocab"], overwrite=True,
                  save_data=os.path.join(work, "data"),
                  data={"corpus_1": {"path_src": files["train.src"], "path_tgt": files["train.tgt"]},
                        "valid": {"path_src": files["val.src"], "path_tgt": files["val.tgt"]}})
    config.setdefault("training", {})["model_path"] = model_dir
    train_yaml = os.path.join(work, "eole_train.yaml")
    with open(train_yaml, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    log = os.path.join(work, "train.log")
    before = _children_cpu()
    proc = _eole(venv, ["train", "--config", train_yaml], threads, log)
    stopped = False
    while proc.poll() is None:
        time.sleep(0.5)
        if not stopped and prep_cpu + _tree_cpu(proc.pid) >= budget:
            stopped = True
            os.kill(proc.pid, signal.SIGINT)  # eole catches it and exits ("Training interrupted")
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    train_cpu = prep_cpu + _children_cpu() - before
    if not stopped:
        _fail(f"eole train ended before its budget (exit {proc.returncode}):\n{_tail(log)}")
    steps = [int(m) for m in re.findall(r"Step (\d+)/", _tail(log, 10**7))]
    # a checkpoint is complete once config.json is written (eole writes it last)
    ckpts = sorted((int(d.rsplit("_", 1)[1]), d) for d in glob.glob(os.path.join(model_dir, "step_*"))
                   if os.path.exists(os.path.join(d, "config.json")))
    if not ckpts:
        _fail(f"eole wrote no checkpoint within the budget (step {max(steps, default=0)}); "
              f"lower training.save_checkpoint_steps in {config_path}\n{_tail(log)}")
    ckpt_step, ckpt = ckpts[-1]
    result = {"seed": seed, "train_cpu": train_cpu, "prep_cpu": prep_cpu, "steps": max(steps, default=ckpt_step),
              "ckpt_step": ckpt_step, "decode": {}}
    refs = _lines(paths["ref"])
    for beam in (5, 1):
        pieces_out = os.path.join(work, f"pred-beam{beam}.sp")
        before = _children_cpu()
        plog = os.path.join(work, f"predict-beam{beam}.log")
        pred = _eole(venv, ["predict", "--model_path", ckpt, "--src", files["test.src"], "--output", pieces_out,
                            "--beam_size", str(beam), "--batch_size", "64", "--seed", str(seed)], threads, plog)
        if pred.wait() != 0:
            _fail(f"eole predict failed:\n{_tail(plog)}")
        text_out = os.path.join(work, f"pred-beam{beam}.txt")
        _in_venv(venv, ["--spm-decode", files["model"], pieces_out, text_out], threads)
        cpu = _children_cpu() - before
        hyps = _lines(text_out)
        result["decode"][str(beam)] = dict(score(hyps, refs), cpu=cpu)
    return result


# -- seqkit -------------------------------------------------------------------------------------
def _seqkit(args: list[str], env: dict[str, str], log: str) -> str:
    with open(log, "w") as out:
        run = subprocess.run([sys.executable, "-m", "seqkit", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                             cwd=REPO)
    if run.returncode != 0:
        _fail(f"seqkit {' '.join(args[:3])} failed:\n{_tail(log)}")
    return _tail(log, 10**7)


def _budget_layer(config: str, seconds: float, path: str) -> None:
    """The config's callbacks plus a CPU TimeBudget (a later list replaces the first)."""
    import yaml

    with open(config) as f:
        callbacks = ((yaml.safe_load(f) or {}).get("trainer") or {}).get("callbacks") or []
    callbacks = [c for c in callbacks if not str(c.get("class_path", "")).endswith("TimeBudget")]
    callbacks.append({"class_path": "seqkit.TimeBudget", "init_args": {"seconds": round(seconds), "clock": "cpu"}})
    with open(path, "w") as f:
        yaml.safe_dump({"trainer": {"callbacks": callbacks}}, f, sort_keys=False)


def seqkit_run(paths: dict[str, str], config: str, extra: list[str], seed: int, budget: float, margin: float,
               work: str, threads: int) -> dict:
    """Fit at ``budget`` CPU-seconds, predict beam 5 and greedy, score."""
    os.makedirs(work, exist_ok=True)
    env = _env(threads)
    layer = os.path.join(work, "budget.yaml")
    _budget_layer(config, budget - margin, layer)
    files = [f"--data.init_args.{s}_file={paths[s]}" for s in ("train", "val", "test")]
    where = [f"--trainer.default_root_dir={work}", f"--trainer.logger.init_args.save_dir={work}"]
    before = _children_cpu()
    log = _seqkit(["fit", "--config", config, "--config", layer, f"--seed_everything={seed}", *files, *where,
                   "--trainer.logger.init_args.name=fit", *extra], env, os.path.join(work, "fit.log"))
    train_cpu = _children_cpu() - before
    ckpts = glob.glob(os.path.join(work, "fit", "version_*", "checkpoints", "*.ckpt"))
    last = [c for c in ckpts if os.path.basename(c) == "last.ckpt"]
    if not ckpts:
        _fail(f"seqkit fit wrote no checkpoint under {work}/fit:\n{log[-3000:]}")
    ckpt = max(last or ckpts, key=os.path.getmtime)
    steps = re.findall(r"time budget of .* reached at step (\d+)", log)
    result = {"seed": seed, "train_cpu": train_cpu, "steps": int(steps[-1]) if steps else None,
              "ckpt": os.path.basename(ckpt), "decode": {}}
    refs = _lines(paths["ref"])
    for beam in (5, 1):
        out = os.path.join(work, f"pred-beam{beam}.txt")
        before = _children_cpu()
        _seqkit(["predict", "--config", config, f"--ckpt_path={ckpt}", *files,
                 f"--data.init_args.predict_file={paths['src']}", f"--prediction.output={out}",
                 f"--model.head.init_args.beam_size={beam}", *where,
                 f"--trainer.logger.init_args.name=predict-beam{beam}", *extra],
                env, os.path.join(work, f"predict-beam{beam}.log"))
        cpu = _children_cpu() - before
        result["decode"][str(beam)] = dict(score(_lines(out), refs), cpu=cpu)
    return result


# -- the table ----------------------------------------------------------------------------------
def _ms(xs: list[float], digits: int, seeds: int) -> str:
    if seeds == 1:
        return f"{xs[0]:.{digits}f}"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"


def _rows(name: str, results: list[dict]) -> list[str]:
    out = []
    for beam, label in (("5", "beam 5"), ("1", "greedy")):
        d = [r["decode"][beam] for r in results]
        train = statistics.mean(r["train_cpu"] for r in results)
        dec = statistics.mean(x["cpu"] for x in d)
        cells = [_ms([x[k] for x in d], 3 if k == "len_ratio" else 1, len(results))
                 for k in ("bleu", "chrf", "chrfpp", "len_ratio")]
        out.append(f"| {name} | {label} | {' | '.join(cells)} | {train:.0f} + {dec:.0f} |")
    return out


def _eole_note(eole: dict) -> str:
    runs = eole["runs"]
    return (f"{os.path.basename(eole.get('config_path', 'benchmarks/configs/eole_rnn.yaml'))}, the newest checkpoint "
            "when the budget ran out: " + ", ".join(f"step {r['ckpt_step']} of {r['steps']}+ reached" for r in runs)
            + f"; SentencePiece {statistics.mean(r['prep_cpu'] for r in runs):.0f} CPU-s of the training figure")


def _machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}"


def table(paths: dict[str, str], eole: dict | None, eole_cached: bool, seqkit: list[dict] | None,
          seqkit_label: str, args: argparse.Namespace) -> None:
    refs, srcs = _lines(paths["ref"]), _lines(paths["src"])
    copy = score(srcs, refs)
    _say("")
    _say(f"English -> German, {len(refs)} test pairs (Debian message catalogs); budget {args.budget:.0f} CPU-s "
         f"of training per run, {args.threads} thread(s)")
    _say("")
    _say("| system | decoding | BLEU | chrF | chrF++ | length ratio | CPU-s (train + decode) |")
    _say("|---|---|---|---|---|---|---|")
    _say(f"| copy the source | - | {copy['bleu']:.1f} | {copy['chrf']:.1f} | {copy['chrfpp']:.1f} "
         f"| {copy['len_ratio']:.3f} | 0 |")
    if eole:
        runs = eole["runs"]
        note = f", cached {eole['when']}" if eole_cached else ""
        steps = "/".join(str(r["ckpt_step"]) for r in runs)
        for row in _rows(f"eole {eole['version']} ({len(runs)} seed{'s' * (len(runs) > 1)}, "
                         f"step {steps}{note})", runs):
            _say(row)
    if seqkit:
        steps = "/".join(str(r["steps"]) if r["steps"] is not None else "?" for r in seqkit)
        for row in _rows(f"seqkit ({len(seqkit)} seed{'s' * (len(seqkit) > 1)}, step {steps})", seqkit):
            _say(row)
    _say("")
    if eole:
        _say("eole: " + _eole_note(eole))
    if seqkit:
        _say(f"seqkit: {seqkit_label}; the checkpoint fit wrote when its TimeBudget stopped it (last.ckpt)")
    if eole and seqkit:
        for key, name in (("bleu", "BLEU"), ("chrf", "chrF")):
            s = statistics.mean(r["decode"]["5"][key] for r in seqkit)
            e = statistics.mean(r["decode"]["5"][key] for r in eole["runs"])
            _say(f"seqkit / eole, beam-5 {name}: {s:.1f} / {e:.1f} = {s / e:.3f}" if e else
                 f"seqkit / eole, beam-5 {name}: {s:.1f} / 0")
    if eole and eole_cached:
        _say(f"eole figures from {eole['path']} (budget {eole['budget']:.0f}, data seed {eole['data_seed']}; "
             "rerun without --skip-eole to refresh)")
    _say(_machine())
    _say("load average %.1f %.1f %.1f" % os.getloadavg())


# -- main ---------------------------------------------------------------------------------------
def _eole_version(venv: str) -> str:
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "eole-*.dist-info"))
    return os.path.basename(found[0])[5:].split(".dist-info")[0] if found else "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=640.0, help="training CPU-seconds per run, each side (default: 640)")
    parser.add_argument("--seeds", type=int, default=3, help="seqkit seeds (default: 3)")
    parser.add_argument("--eole-seeds", type=int, default=1, help="eole seeds (default: 1)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default: 1)")
    parser.add_argument("--margin", type=float, default=15.0,
                        help="seqkit's TimeBudget is the budget less this, for its start-up (default: 15)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the train/val/test split (default: 0)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"seqkit config (default: {DEFAULT_CONFIG})")
    parser.add_argument("--seqkit-args", default="", help="extra seqkit fit/predict overrides, one shell-quoted string")
    parser.add_argument("--eole-config", default=os.path.join(HERE, "configs", "eole_rnn.yaml"),
                        help="eole config (default: benchmarks/configs/eole_rnn.yaml)")
    parser.add_argument("--eole-venv", default="~/.cache/seqkit-bench/eole-venv", help="the venv eole is installed in")
    parser.add_argument("--cache", default="~/.cache/seqkit-bench", help="where the corpus, runs and results go")
    parser.add_argument("--skip-eole", action="store_true", help="use the cached eole figures")
    parser.add_argument("--skip-seqkit", action="store_true", help="run eole only")
    parser.add_argument("--only-corpus", action="store_true", help="build the corpus, print it and stop")
    parser.add_argument("--keep", action="store_true", help="keep the runs' folders (checkpoints, logs, outputs)")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    cache = os.path.expanduser(args.cache)
    paths = build_corpus(cache, args.data_seed)
    describe_corpus(paths, samples=5 if args.only_corpus else 0)
    if args.only_corpus:
        return

    results = os.path.join(cache, "mt", "results")
    os.makedirs(results, exist_ok=True)
    cached = os.path.join(results, f"eole-budget{args.budget:.0f}-data{args.data_seed}.json")
    work = tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=os.path.join(cache, "mt"))
    eole, eole_cached = None, False
    try:
        if not args.skip_eole:
            venv = os.path.expanduser(args.eole_venv)
            runs = []
            for seed in range(args.eole_seeds):
                r = eole_run(paths, args.eole_config, venv, seed, args.budget, os.path.join(work, f"eole-seed{seed}"),
                             args.threads)
                runs.append(r)
                b5, g = r["decode"]["5"], r["decode"]["1"]
                _say(f"eole seed {seed}: step {r['steps']} (checkpoint {r['ckpt_step']}) in {r['train_cpu']:.0f} CPU-s; "
                     f"BLEU {b5['bleu']:.1f} / chrF {b5['chrf']:.1f} beam 5, {g['bleu']:.1f} / {g['chrf']:.1f} greedy")
            with open(args.eole_config) as f:
                eole_yaml = f.read()
            eole = {"version": _eole_version(venv), "runs": runs, "budget": args.budget, "data_seed": args.data_seed,
                    "threads": args.threads, "when": time.strftime("%Y-%m-%d %H:%M"), "config": eole_yaml,
                    "config_path": os.path.abspath(args.eole_config),
                    "path": cached}
            with open(cached + ".tmp", "w") as f:
                json.dump(eole, f, indent=1)
            os.replace(cached + ".tmp", cached)
        elif os.path.exists(cached):
            with open(cached) as f:
                eole, eole_cached = json.load(f), True
        else:
            _say(f"no cached eole figures for budget {args.budget:.0f} and data seed {args.data_seed} ({cached})")

        seqkit, label = None, ""
        if not args.skip_seqkit:
            config, extra = args.config, shlex.split(args.seqkit_args)
            if not os.path.exists(os.path.join(REPO, config)) and not os.path.exists(config):
                if args.config != DEFAULT_CONFIG:
                    _fail(f"no seqkit config {config}")
                _say(f"{DEFAULT_CONFIG} does not exist yet: {FALLBACK_CONFIG} with {' '.join(FALLBACK_ARGS)} stands in")
                config, extra = FALLBACK_CONFIG, FALLBACK_ARGS + extra
            config = os.path.abspath(os.path.join(REPO, config))
            label = os.path.relpath(config, REPO) + (f" {' '.join(extra)}" if extra else "")
            seqkit = []
            for seed in range(args.seeds):
                r = seqkit_run(paths, config, extra, seed, args.budget, args.margin,
                               os.path.join(work, f"seqkit-seed{seed}"), args.threads)
                seqkit.append(r)
                b5, g = r["decode"]["5"], r["decode"]["1"]
                _say(f"seqkit seed {seed}: step {r['steps']} ({r['ckpt']}) in {r['train_cpu']:.0f} CPU-s; "
                     f"BLEU {b5['bleu']:.1f} / chrF {b5['chrf']:.1f} beam 5, {g['bleu']:.1f} / {g['chrf']:.1f} greedy")
        table(paths, eole, eole_cached, seqkit, label, args)
    finally:
        if args.keep:
            _say(f"runs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--spm-prepare"]:  # the helpers run in eole's venv
        with open(sys.argv[2]) as f:
            done = _sentencepiece(json.load(f), sys.argv[3], int(sys.argv[4]))
        with open(os.path.join(sys.argv[3], "files.json"), "w") as f:
            json.dump(done, f)
    elif sys.argv[1:2] == ["--spm-decode"]:
        _spm_decode(*sys.argv[2:5])
    else:
        main()
