"""The seqkit command as users run it: every shipped config parses, a config trains, bad input
gets one clear line and a non-zero exit, and predict writes in input order from a checkpoint
alone."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys

import pytest

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit.cli import main

TASK = CONFIGS / "classify.yaml"


def _is_task_config(path) -> bool:
    return any(line.startswith(("model:", "data:")) for line in path.read_text().splitlines())


ALL_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=[str(p.relative_to(CONFIGS)) for p in ALL_CONFIGS])
def test_every_shipped_config_parses(path, capsys):
    """Task configs parse alone; layers (trainer, optimizer) parse stacked on a task config."""
    args = ["fit", "--config", str(path)] if _is_task_config(path) else ["fit", "--config", str(TASK), "--config", str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    out, err = capsys.readouterr()
    assert exit_info.value.code in (0, None), err
    assert "model:" in out and "trainer:" in out


def test_fit_fast_dev_run(tmp_path):
    proc = run_seqkit("fit", "--config", str(TASK), "--trainer.fast_dev_run=1", *logger_args(tmp_path), cwd=tmp_path)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--model.head=NoSuchHead"], "model.head: unknown class 'NoSuchHead'; installed heads: "),
        (["--data=NoSuchData"], "data: unknown class 'NoSuchData'; installed datamodules: "),
        (["--model.rnn=NoSuchStack"], "installed recurrent stacks: LSTMStack"),
        (["--trainer.max_epochs=many"], "trainer.max_epochs: expected int or null, got 'many'"),
        (["--model.head.init_args.hidden_size=big"], "model.head.init_args.hidden_size: expected int, got 'big'"),
        (["--model.head.init_args.pooling=median"], "expected one of: last, mean, max, got 'median'"),
        (["--model.head.init_args.poolng=mean"], "unknown option 'poolng'; ManyToOneHead takes: pooling"),
        (["--data.init_args.data_dir=/no/such/folder"], "data.init_args.data_dir: folder not found: /no/such/folder"),
    ],
)
def test_bad_input_is_one_clear_line(args, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TASK), "--trainer.fast_dev_run=1", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code not in (0, None)
    assert expected in err
    if "installed heads" in expected:
        assert "ManyToOneHead" in err
    assert "Traceback" not in err


def test_missing_config_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "no/such/config.yaml"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "--config: file not found: no/such/config.yaml" in err and "trainer/ddp_cpu" in err


def test_help_and_plugins_build_no_model_and_touch_no_data(monkeypatch, capsys):
    import seqkit.data
    import seqkit.model

    import functools

    def forbid(fn):
        @functools.wraps(fn)  # keeps the signature the parser reads
        def forbidden(*args, **kwargs):
            raise AssertionError("built a model or touched data")

        return forbidden

    monkeypatch.setattr(seqkit.model.SequenceModel, "__init__", forbid(seqkit.model.SequenceModel.__init__))
    monkeypatch.setattr(seqkit.data.SeqDataModule, "spec", property(forbid(seqkit.data.SeqDataModule.spec.fget)))
    for args in (["--help"], ["fit", "--help"], ["fit", "--config", str(TASK), "--help"], ["plugins"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code in (0, None), args
    out = capsys.readouterr().out
    assert "seqkit plugins" in out and "ManyToOneHead" in out


def test_python_dash_m_and_console_script_agree():
    proc = subprocess.run([sys.executable, "-m", "seqkit", "plugins", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and '"ManyToOneHead"' in proc.stdout


def test_predict_from_checkpoint_alone_in_input_order(tmp_path):
    """Train on the user's own TSV files, move them away, predict with only the checkpoint."""
    data = tmp_path / "data"
    data.mkdir()
    rows = {"train": 300, "val": 40, "test": 40}
    from seqkit.marker import generate_marker_task

    for split, n in rows.items():
        with open(data / f"{split}.tsv", "w") as fh:
            for label, tokens in generate_marker_task(n, 4, 3, 12, seed=hash(split) % 100):
                fh.write(f"{label}\t{' '.join(tokens)}\n")
    run_seqkit("fit", "--config", str(TASK), f"--data.init_args.data_dir={data}", "--data.init_args.num_symbols=4",
               "--trainer.max_epochs=1", *logger_args(tmp_path), cwd=tmp_path)
    ckpt = next(tmp_path.rglob("*.ckpt"))
    shutil.move(str(data), str(tmp_path / "moved-away"))

    lines = ["a # b c", "d d d d d d d # a b c d", "c #", "b b # d a"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "rev.txt").write_text("\n".join(reversed(lines)) + "\n")
    for name in ("in", "rev"):
        run_seqkit("predict", "--ckpt_path", str(ckpt), f"--data.init_args.predict_file={name}.txt",
                   f"--prediction.output={name}.csv", "--trainer.enable_progress_bar=false", cwd=tmp_path)
    fwd = list(csv.DictReader(open(tmp_path / "in.csv")))
    rev = list(csv.DictReader(open(tmp_path / "rev.csv")))
    assert [r["index"] for r in fwd] == ["0", "1", "2", "3"]
    # bucketing batches the lines by length; the file must still follow the input order
    strip = [{k: v for k, v in r.items() if k != "index"} for r in fwd]
    assert strip == [{k: v for k, v in r.items() if k != "index"} for r in reversed(rev)]
    assert set(fwd[0]) == {"index", "label", "p_a", "p_b", "p_c", "p_d"}


def test_ckpt_path_last_with_no_run_is_one_line(capsys, tmp_path, monkeypatch):
    """Lightning would test untrained weights with a warning; seqkit looks for the config's newest
    run (tests/test_model_selection.py) and, finding none, stops with a clear line."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--config", str(TASK), "--ckpt_path", "last"])
    assert exit_info.value.code != 0
    assert "--ckpt_path last: no last.ckpt of run 'classify' under runs/classify/version_*/checkpoints/" in capsys.readouterr().err


def test_help_shows_the_valid_ranges(capsys):
    """A user reading --help sees which values are allowed before trying one."""
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(TASK), "--model.rnn.help", "LSTMStack"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--model.rnn.hidden_size HIDDEN_SIZE" in out
    assert "(type: PositiveInt, default:" in out and "(type: Probability, default: 0.0)" in out
