"""A corpus of mistakes a user can make, driven through the real CLI.

Every case must end with exit code != 0, no traceback, exactly one ``seqkit: error:`` line that
names the file (and line) or the YAML key at fault, and nothing written or half-written (no new
checkpoint, temporary file or prediction file).

The cases run in a few worker processes, each calling ``seqkit.cli.main(argv)`` once per case
exactly as the ``seqkit`` command does (stderr captured, SystemExit caught); a handful also run as
real ``seqkit`` subprocesses, so the in-process driver cannot hide a difference.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CONFIGS, ROOT, run_seqkit

CLASSIFY = str(CONFIGS / "classify.yaml")
SEQCLASS = str(CONFIGS / "seqclass.yaml")
TINY = ["--data.init_args.num_train=32", "--data.init_args.num_val=16", "--data.init_args.num_test=16",
        "--trainer.max_epochs=1", "--model.rnn.init_args.hidden_size=8"]

DRIVER = r'''
import io, json, os, sys, contextlib, warnings
warnings.simplefilter("ignore")
from seqkit import cli
cases = json.load(open(sys.argv[1]))
out = []
for case in cases:
    cli._LAYERS.clear(); cli._CHECKPOINTS.clear()
    err = io.StringIO()
    code = 0
    os.chdir(case["cwd"])
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main(case["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # a traceback the user would see
            import traceback
            traceback.print_exc(file=err)
            code = -1
    out.append({"id": case["id"], "code": code, "stderr": err.getvalue()})
json.dump(out, open(sys.argv[2], "w"))
'''


def _write(path: Path, text: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _cases(tmp: Path, classify_ckpt: str, seqclass_ckpt: str) -> list[dict]:
    """(category, id, argv, what the error line must mention)."""
    cases: list[tuple[str, str, list[str], str]] = []
    fit = ["fit", "--config", CLASSIFY, *TINY]

    def add(category, cid, argv, mention):
        cases.append((category, cid, argv, mention))

    # -- configs -------------------------------------------------------------------------------
    add("config", "unknown-head", [*fit, "--model.head=Seq2Seq"], "model.head")
    add("config", "unknown-data", [*fit, "--data=NoSuchData"], "data")
    add("config", "unknown-encoder", [*fit, "--model.encoder=NoSuchEncoder"], "model.encoder")
    add("config", "unknown-rnn", [*fit, "--model.rnn=NoSuchStack"], "model.rnn")
    add("config", "bad-literal", [*fit, "--model.head.init_args.pooling=median"], "pooling")
    add("config", "wrong-type", [*fit, "--model.rnn.init_args.hidden_size=big"], "hidden_size")
    add("config", "unknown-head-option", [*fit, "--model.head.init_args.nosuch=1"], "nosuch")
    add("config", "unknown-top-key", [*fit, "--nosuch=1"], "nosuch")
    add("config", "missing-config", ["fit", "--config", str(tmp / "missing.yaml")], "missing.yaml")
    syntax = _write(tmp / "layers" / "syntax.yaml", "trainer:\n  max_epochs: 2\n   bad: [\n")
    add("config", "yaml-syntax", [*fit, "--config", syntax], "syntax.yaml:")
    listy = _write(tmp / "layers" / "list.yaml", "- a\n- b\n")
    add("config", "layer-not-mapping", [*fit, "--config", listy], "list.yaml")
    unknown = _write(tmp / "layers" / "unknown.yaml", "model:\n  head:\n    init_args:\n      poolin: mean\n")
    add("config", "unknown-key-in-layer", [*fit, "--config", unknown], "unknown.yaml")
    add("config", "batch-size-0", [*fit, "--data.init_args.loader.batch_size=0"], "batch_size")
    add("config", "eval-batch-negative", [*fit, "--data.init_args.loader.eval_batch_size=-1"], "batch_size")
    add("config", "workers-negative", [*fit, "--data.init_args.loader.num_workers=-1"], "num_workers")
    add("config", "lr-negative", [*fit, "--optimizer.init_args.lr=-1"], "learning rate")
    add("config", "accelerator", [*fit, "--trainer.accelerator=tpux"], "accelerator")
    add("config", "strategy", [*fit, "--trainer.strategy=nosuch"], "strategy")
    add("config", "fsdp-no-gpu", [*fit, "--config", "trainer/fsdp"], "GPU")
    add("config", "bf16-gpu-no-gpu", [*fit, "--config", "trainer/bf16", "--trainer.accelerator=gpu"], "GPU")
    add("config", "unknown-layer-name", [*fit, "--config", "trainer/nosuch"], "trainer/nosuch")
    add("config", "tbptt-0", [*fit, "--model.tbptt_steps=0"], "tbptt_steps")
    add("config", "clip-negative", [*fit, "--model.gradient_clip_val=-1"], "gradient_clip_val")
    add("config", "min-len", [*fit, "--data.init_args.min_len=1"], "min_len")
    add("config", "variant", [*fit, "--model.rnn.init_args.variant=gru"], "variant")
    add("config", "dropout", [*fit, "--model.rnn.init_args.dropout=1.5"], "dropout")
    add("config", "loader-key-moved", [*fit, "--data.init_args.batch_size=8"], "data.init_args.loader.batch_size")
    add("config", "hidden-size-0", [*fit, "--model.rnn.init_args.hidden_size=0"], "must be >0")
    add("config", "num-layers-negative", [*fit, "--model.rnn.init_args.num_layers=-5"], "num_layers")
    add("config", "bucket-pool-0", [*fit, "--data.init_args.loader.pool=0"], "pool")
    add("config", "proj-size", [*fit, "--model.rnn.init_args.proj_size=64"], "proj_size")
    add("config", "forget-bias-nfg", [*fit, "--model.rnn.init_args.variant=nfg", "--model.rnn.init_args.forget_bias=1.0"],
        "forget_bias")
    add("config", "max-epochs-type", [*fit, "--trainer.max_epochs=abc"], "max_epochs")
    add("config", "ckpt-last-outside-fit", ["test", "--config", CLASSIFY, "--ckpt_path=last"], "ckpt_path")
    add("config", "resume-last-missing", [*fit, "--ckpt_path=last", f"--trainer.logger.init_args.save_dir={tmp / 'none'}"],
        "last.ckpt")
    add("config", "ensemble-0", [*fit, "--model.ensemble=0"], "ensemble")
    add("config", "ensemble-with-tbptt", [*fit, "--model.ensemble=2", "--model.tbptt_steps=4"], "model.ensemble")
    add("config", "ensemble-per-step-head", [*fit, "--model.ensemble=2", "--model.head=PerStepHead"], "PerStepHead")
    add("config", "init-from-missing", [*fit, f"--model.init_from={tmp / 'no-lm.ckpt'}"], "model.init_from")
    add("config", "freeze-without-init", [*fit, "--model.freeze_pretrained_epochs=1"], "model.init_from")
    add("config", "vocab-from-missing", ["fit", "--config", str(ROOT / "configs" / "sentiment.yaml"), "--trainer.max_epochs=1",
                                         f"--data.init_args.vocab_from={tmp / 'no-lm.ckpt'}"], "data.init_args.vocab_from")
    add("config", "tbptt-with-trainer-clip", [*fit, "--model.tbptt_steps=4", "--trainer.gradient_clip_val=1.0"],
        "gradient_clip_val")

    # -- data files: MarkerTaskData (TSV folders) ------------------------------------------------------
    def tsv_dir(name, train, val="a\tb c\n", test="a\tb c\n"):
        d = tmp / "tsv" / name
        _write(d / "train.tsv", train)
        if val is not None:
            _write(d / "val.tsv", val)
        _write(d / "test.tsv", test)
        return str(d)

    marker = ["fit", "--config", CLASSIFY, "--trainer.max_epochs=1"]
    d = tsv_dir("notab", "a\tb c\nno tab here\n")
    add("data", "tsv-no-tab", [*marker, f"--data.init_args.data_dir={d}"], "train.tsv:2")
    d = tsv_dir("emptyseq", "a\tb\nb\t  \n")
    add("data", "tsv-empty-seq", [*marker, f"--data.init_args.data_dir={d}"], "train.tsv:2")
    bad_utf8 = tmp / "tsv" / "utf8"
    _write(bad_utf8 / "train.tsv", b"a\tb c\nb\t\xff\xfe\n")
    _write(bad_utf8 / "val.tsv", "a\tb\n")
    _write(bad_utf8 / "test.tsv", "a\tb\n")
    add("data", "tsv-bad-utf8", [*marker, f"--data.init_args.data_dir={bad_utf8}"], "train.tsv:2")
    d = tsv_dir("noval", "a\tb\nb\tc\n", val=None)
    add("data", "tsv-missing-val", [*marker, f"--data.init_args.data_dir={d}"], "val.tsv")
    d = tsv_dir("emptyfile", "")
    add("data", "tsv-empty-file", [*marker, f"--data.init_args.data_dir={d}"], "train.tsv")
    d = tsv_dir("unseen", "a\tb\nb\tc\n", val="z\tb\n")
    add("data", "tsv-unseen-label", [*marker, f"--data.init_args.data_dir={d}"], "'z'")
    d = tsv_dir("onelabel", "a\tb\na\tc\n")
    add("data", "tsv-one-label", [*marker, f"--data.init_args.data_dir={d}"], "at least two labels")
    add("data", "data-dir-missing", [*marker, f"--data.init_args.data_dir={tmp / 'nowhere'}"], "data_dir")

    # -- data files: SequenceArrayData (.ts / .npz / .npy) ------------------------------------------------
    seq = ["fit", "--config", SEQCLASS, "--trainer.max_epochs=1"]
    head = "@problemName t\n@univariate true\n@classLabel true a b\n@data\n"
    ts_num = _write(tmp / "ts" / "num.ts", head + "1,2,3:a\n1,x,3:b\n")
    add("data", "ts-not-number", [*seq, f"--data.init_args.train_file={ts_num}"], "num.ts:6")
    ts_nodata = _write(tmp / "ts" / "nodata.ts", "@problemName t\n@classLabel true a b\n")
    add("data", "ts-no-data-line", [*seq, f"--data.init_args.train_file={ts_nodata}"], "nodata.ts")
    ts_label = _write(tmp / "ts" / "label.ts", head + "1,2,3:a\n1,2,3:c\n")
    add("data", "ts-undeclared-label", [*seq, f"--data.init_args.train_file={ts_label}"], "label.ts:6")
    ts_dims = _write(tmp / "ts" / "dims.ts", head.replace("true a", "true a") + "1,2:3,4:a\n1,2:b\n")
    add("data", "ts-dims-change", [*seq, f"--data.init_args.train_file={ts_dims}"], "dims.ts:6")
    ts_header = _write(tmp / "ts" / "header.ts", "@problemName t\nrandom words\n@data\n1:a\n")
    add("data", "ts-bad-header", [*seq, f"--data.init_args.train_file={ts_header}"], "header.ts:2")
    x = np.zeros((4, 5, 2), dtype=np.float32)
    np.savez(tmp / "npz_noy.npz", x=x)
    add("data", "npz-no-labels", [*seq, f"--data.init_args.train_file={tmp / 'npz_noy.npz'}"], "npz_noy.npz")
    np.savez(tmp / "npz_len.npz", x=x, y=np.array([0, 1, 0, 1]), lengths=np.array([5, 9, 1, 2]))
    add("data", "npz-bad-length", [*seq, f"--data.init_args.train_file={tmp / 'npz_len.npz'}"], "npz_len.npz")
    np.savez(tmp / "npz_count.npz", x=x, y=np.array([0, 1]))
    add("data", "npz-label-count", [*seq, f"--data.init_args.train_file={tmp / 'npz_count.npz'}"], "npz_count.npz")
    xn = x.copy()
    xn[1, 2, 0] = np.nan
    np.savez(tmp / "npz_nan.npz", x=xn, y=np.array([0, 1, 0, 1]))
    add("data", "npz-missing-value", [*seq, f"--data.init_args.train_file={tmp / 'npz_nan.npz'}"], "npz_nan.npz")
    np.save(tmp / "nolabels.npy", x)
    add("data", "npy-no-sibling-labels", [*seq, f"--data.init_args.train_file={tmp / 'nolabels.npy'}"], "nolabels")
    _write(tmp / "data.csv", "1,2\n")
    add("data", "unknown-extension", [*seq, f"--data.init_args.train_file={tmp / 'data.csv'}"], "data.csv")
    add("data", "train-file-missing", [*seq, f"--data.init_args.train_file={tmp / 'absent.npz'}"], "absent.npz")
    np.savez(tmp / "npz_text.npz", x=np.array([["a", "b"], ["c", "d"]]), y=np.array([0, 1]))
    add("data", "npz-not-numbers", [*seq, f"--data.init_args.train_file={tmp / 'npz_text.npz'}"], "npz_text.npz")

    # -- data files: the first-party plugins' own readers ----------------------------------------------
    def cfg(name):
        return ["fit", "--config", str(CONFIGS / name), "--trainer.max_epochs=1", "--trainer.max_steps=1"]

    tr = [*cfg("translation.yaml"), "--data.init_args.train_file"]
    add("data", "parallel-no-tab", [*tr, _write(tmp / "tr" / "notab.tsv", "a b\tc d\nno tab\n")], "notab.tsv:2")
    add("data", "parallel-bad-utf8", [*tr, _write(tmp / "tr" / "utf8.tsv", b"a b\tc d\nx\t\xff\n")], "utf8.tsv:2")
    add("data", "parallel-empty-file", [*tr, _write(tmp / "tr" / "empty.tsv", "")], "no sentence pairs")
    add("data", "parallel-empty-target", [*tr, _write(tmp / "tr" / "side.tsv", "a b\tc d\nx y\t \n")], "side.tsv:2")
    src, tgt = _write(tmp / "tr" / "a.src", "a\nb\nc\n"), _write(tmp / "tr" / "a.tgt", "x\ny\n")
    add("data", "parallel-misaligned", [*tr, f"[{src},{tgt}]"], "a.tgt has 2")
    add("data", "parallel-missing", [*tr, str(tmp / "tr" / "absent.tsv")], "absent.tsv")
    se = [*cfg("sentiment.yaml"), "--data.init_args.train_file"]
    add("data", "csv-extra-field", [*se, _write(tmp / "se" / "f.csv", "text,label\ngood,pos\nbad,neg,x\n")], "f.csv:3")
    add("data", "csv-empty-label", [*se, _write(tmp / "se" / "nl.csv", "text,label\ngood,pos\nbad,\n")], "nl.csv:3")
    add("data", "csv-no-column", [*se, _write(tmp / "se" / "col.csv", "review,label\ngood,pos\nbad,neg\n")], "'text'")
    add("data", "csv-bad-utf8", [*se, _write(tmp / "se" / "u.csv", b"text,label\ngood,pos\nb\xffad,neg\n")], "u.csv:3")
    fo = [*cfg("forecast.yaml"), "--data.init_args.csv_path"]
    add("data", "series-extra-field", [*fo, _write(tmp / "fo" / "f.csv", "date,value\n2020-01-01,1\n2020-01-02,2,3\n")], "f.csv:3")
    add("data", "series-not-number", [*fo, _write(tmp / "fo" / "n.csv", "date,value\n2020-01-01,1\n2020-01-02,three\n")],
        "n.csv:3")
    add("data", "series-time-order", [*fo, _write(tmp / "fo" / "o.csv", "date,value\n2020-01-02,1\n2020-01-01,2\n")], "o.csv:3")
    add("data", "series-missing-value", [*fo, _write(tmp / "fo" / "m.csv", "date,value\n2020-01-01,1\n2020-01-02,\n")],
        "m.csv:3")
    for split in ("train", "val", "test"):
        _write(tmp / "vi" / split / "c1" / "000.png", b"not a png")
        _write(tmp / "vi" / split / "c1.csv", "label\nwalk\n")
        (tmp / "vi2" / split).mkdir(parents=True)
        np.save(tmp / "vi2" / split / "c1.npy", np.zeros((3, 8, 8), np.uint8))
        _write(tmp / "vi2" / split / "c1.csv", "label\nwalk\nwalk\n")
    add("data", "video-bad-frame", [*cfg("video.yaml"), f"--data.init_args.data_dir={tmp / 'vi'}"], "000.png")
    add("data", "video-label-count", [*cfg("video.yaml"), f"--data.init_args.data_dir={tmp / 'vi2'}"], "c1.csv")
    coco = json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "caption": "x"}]})
    ca = [*cfg("captioning.yaml"), "--data.init_args.captions"]
    add("data", "captions-json-image-id", [*ca, _write(tmp / "ca" / "c.json", coco)], "annotations[0]")
    add("data", "captions-no-image", [*ca, _write(tmp / "ca" / "c.tsv", "image\tcaption\nnone.png\ta cat\n")], "c.tsv:2")
    ok = _write(tmp / "v2" / "ok.tsv", "1 2\ta b\n")
    v2 = [*cfg("vec2seq.yaml"), f"--data.init_args.val_file={ok}", f"--data.init_args.test_file={ok}"]
    v2 = [*v2, "--data.init_args.train_file"]
    add("data", "vectors-not-numbers", [*v2, _write(tmp / "v2" / "n.tsv", "1 2\ta\n1 x\tc\n")], "n.tsv:2")
    add("data", "vectors-no-tab", [*v2, _write(tmp / "v2" / "t.tsv", "1 2\ta b\n1 2\n")], "t.tsv:2")

    # -- checkpoints -------------------------------------------------------------------------------------
    add("checkpoint", "missing", ["predict", f"--ckpt_path={tmp / 'absent.ckpt'}"], "absent.ckpt")
    add("checkpoint", "size-changed-after-training", ["test", f"--ckpt_path={classify_ckpt}",
                                                       "--model.rnn.init_args.hidden_size=7"], "rnn.")
    add("checkpoint", "layers-changed-after-training", ["predict", f"--ckpt_path={classify_ckpt}",
                                                         "--model.rnn.init_args.num_layers=3"], "does not fit the model")
    rand = _write(tmp / "ck" / "random.ckpt", os.urandom(2048))
    add("checkpoint", "random-bytes", ["predict", f"--ckpt_path={rand}"], "random.ckpt")
    data = Path(classify_ckpt).read_bytes()
    trunc = _write(tmp / "ck" / "truncated.ckpt", data[: len(data) // 3])
    add("checkpoint", "truncated-predict", ["predict", f"--ckpt_path={trunc}"], "truncated.ckpt")
    add("checkpoint", "truncated-test-config", ["test", "--config", CLASSIFY, f"--ckpt_path={trunc}"], "truncated.ckpt")
    add("checkpoint", "truncated-fit-resume", [*fit, f"--ckpt_path={trunc}"], "truncated.ckpt")
    payload = _write(tmp / "ck" / "payload.ckpt", pickle.dumps(_Payload(str(tmp / "PWNED"))))
    add("checkpoint", "payload-predict", ["predict", f"--ckpt_path={payload}"], "unsafe")
    add("checkpoint", "payload-validate", ["validate", f"--ckpt_path={payload}"], "unsafe")
    laced = str(tmp / "ck" / "laced.ckpt")  # a real checkpoint with one object that would run code
    torch.save({**torch.load(classify_ckpt, weights_only=True), "extra": _Payload(str(tmp / "PWNED"))}, laced)
    add("checkpoint", "laced-predict", ["predict", f"--ckpt_path={laced}"], "unsafe")
    add("checkpoint", "laced-test", ["test", f"--ckpt_path={laced}"], "unsafe")
    add("checkpoint", "laced-test-config", ["test", "--config", CLASSIFY, f"--ckpt_path={laced}"], "unsafe")
    add("checkpoint", "laced-fit-resume", [*fit, f"--ckpt_path={laced}"], "unsafe")
    add("checkpoint", "payload-test", ["test", "--config", CLASSIFY, f"--ckpt_path={payload}"], "unsafe")
    add("checkpoint", "laced-validate", ["validate", f"--ckpt_path={laced}"], "unsafe")
    add("checkpoint", "payload-fit-resume", [*fit, f"--ckpt_path={payload}"], "unsafe")
    empty = _write(tmp / "ck" / "empty.ckpt", b"")
    add("checkpoint", "empty-file", ["predict", f"--ckpt_path={empty}"], "empty.ckpt")
    jsonck = _write(tmp / "ck" / "json.ckpt", json.dumps({"state_dict": {}}))
    add("checkpoint", "json-renamed", ["predict", f"--ckpt_path={jsonck}"], "json.ckpt")
    add("checkpoint", "other-task", ["test", "--config", CLASSIFY, f"--ckpt_path={seqclass_ckpt}"], "another task")
    add("checkpoint", "other-task-reverse", ["test", "--config", SEQCLASS, f"--ckpt_path={classify_ckpt}"], "another task")
    add("checkpoint", "bad-prediction-format", ["predict", f"--ckpt_path={classify_ckpt}",
                                                 f"--prediction.output={tmp / 'out' / 'p.xyz'}"], "prediction.output")
    add("checkpoint", "weights-only-false", ["predict", f"--ckpt_path={classify_ckpt}", "--weights_only=false"],
        "weights_only")
    nockpt = _write(tmp / "ck" / "nostate.ckpt", b"")
    torch.save({"state_dict": {}, "seqkit": {"config": None}}, nockpt)
    add("checkpoint", "no-config-no-state", ["predict", f"--ckpt_path={nockpt}"], "config")
    return [dict(category=c, id=i, argv=a, mention=m) for c, i, a, m in cases]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("bad-input-ckpts")
    run_seqkit("fit", "--config", CLASSIFY, *TINY, "--trainer.max_steps=1", f"--trainer.default_root_dir={root}",
               f"--trainer.logger.init_args.save_dir={root / 'c'}", "--trainer.enable_progress_bar=false", cwd=root)
    run_seqkit("fit", "--config", SEQCLASS, *TINY, "--trainer.max_steps=1", f"--trainer.default_root_dir={root}",
               f"--trainer.logger.init_args.save_dir={root / 's'}", "--trainer.enable_progress_bar=false", cwd=root)
    c = sorted((root / "c").rglob("*.ckpt"))[0]
    s = sorted((root / "s").rglob("*.ckpt"))[0]
    return str(c), str(s)


def _snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file()}


@pytest.mark.timeout(900)
def test_every_mistake_is_one_clear_line(tmp_path, checkpoints):
    cases = _cases(tmp_path / "inputs", *checkpoints)
    assert len(cases) >= 95, len(cases)
    work = tmp_path / "work"
    work.mkdir()
    for case in cases:
        case["argv"] = [*case["argv"], "--trainer.enable_progress_bar=false"] if case["argv"][0] == "fit" else case["argv"]
        case["cwd"] = str(work)
    before = _snapshot(tmp_path)
    halves = [cases[0::2], cases[1::2]]  # two workers: the machine has two cores
    procs = []
    for k, part in enumerate(halves):
        src, dst = tmp_path / f"cases{k}.json", tmp_path / f"results{k}.json"
        src.write_text(json.dumps(part))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
        procs.append((subprocess.Popen([sys.executable, "-c", DRIVER, str(src), str(dst)], env=env, cwd=work), dst))
    for proc, _ in procs:
        proc.wait(timeout=800)
    results = {r["id"]: r for _, dst in procs for r in json.loads(dst.read_text())}
    problems, table = [], {}
    for case in cases:
        r = results[case["id"]]
        lines = [ln for ln in r["stderr"].splitlines() if ln.startswith("seqkit: error:")]
        ok = (r["code"] not in (0, -1) and "Traceback" not in r["stderr"] and len(lines) == 1
              and case["mention"].lower() in lines[0].lower())
        cat = table.setdefault(case["category"], [0, 0])
        cat[0] += 1
        cat[1] += ok
        if not ok:
            problems.append(f"{case['id']}: exit {r['code']}, wants {case['mention']!r}: {r['stderr'].strip()[-600:]}")
    written = [p for p in _snapshot(tmp_path) - before
               if p.endswith((".ckpt", ".tmp")) or "/out/" in p or p.endswith(("predictions.csv", "PWNED"))]
    summary = ", ".join(f"{c}: {ok}/{n}" for c, (n, ok) in table.items())
    assert not problems, f"{summary}\n" + "\n".join(problems)
    assert not written, f"files written by failing commands: {written}"
    print(f"\nbad-input corpus: {summary}")


@pytest.mark.parametrize("argv,mention", [
    (["fit", "--config", CLASSIFY, "--model.head=Seq2Seq"], "installed heads"),
    (["predict", "--ckpt_path", "/no/such.ckpt"], "/no/such.ckpt"),
])
def test_the_real_command_agrees(tmp_path, argv, mention):
    proc = run_seqkit(*argv, cwd=tmp_path, check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("seqkit: error:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1 and mention in lines[0]
