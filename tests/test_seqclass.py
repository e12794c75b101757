"""Multivariate sequence classification (SequenceArrayData): .npz / .npy / .ts readers, padding
invariance of the many-to-one model, bad inputs, and a train + predict run through the CLI."""

from __future__ import annotations

import csv
from functools import partial

import numpy as np
import pytest
import torch

from conftest import CONFIGS, last_value, logger_args, read_metrics, run_seqkit
from seqkit import DataError, LSTMStack, ManyToOneHead, SequenceModel
from seqkit_classify.sequences import SequenceArrayData, read_sequences

TS = """# a tiny UEA-style problem
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3,4:0,0,1,1:up
4,3,2,1:1,1,0,0:down
1,2,3,?:0,1,1,?:up
5,4,3,2,1:1,1,1,0,0:down
"""


def _ts(tmp_path, text=TS, name="train.ts"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_ts_reader_variable_length_and_declared_labels(tmp_path):
    rows, declared = read_sequences(_ts(tmp_path))
    assert declared == ["up", "down"]
    assert [x.shape for x, _, _ in rows] == [(4, 2), (4, 2), (3, 2), (5, 2)]  # trailing '?' is padding
    assert [label for _, label, _ in rows] == ["up", "down", "up", "down"]
    np.testing.assert_allclose(rows[1][0][:, 0], [4, 3, 2, 1])


@pytest.mark.parametrize("line,message", [
    ("1,2:1,2:sideways", "train.ts:14: class label 'sideways' is not declared"),
    ("1,2,3:1,2:up", "train.ts:14: the dimensions of this case have different lengths"),
    ("1,x:1,2:up", "train.ts:14: dimension 1 has a value that is not a number"),
    ("1,?,3:1,2,3:up", "missing value at step 2"),
])
def test_ts_bad_cases_name_the_line(tmp_path, line, message):
    path = _ts(tmp_path, TS + line + "\n")
    dm = SequenceArrayData(train_file=path, val_fraction=0.2)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        dm.setup("fit")


def test_missing_values_interpolate_policy(tmp_path):
    path = _ts(tmp_path, TS + "1,?,3:1,2,3:up\n")
    dm = SequenceArrayData(train_file=path, val_file=path, missing="interpolate", normalize=False)
    dm.setup("fit")
    filled = [x for x, _, w in dm.train_set.items if w.endswith(":14")][0]
    np.testing.assert_allclose(filled[:, 0].numpy(), [1, 2, 3])


def test_npz_with_lengths_and_npy_siblings(tmp_path):
    x = np.zeros((3, 6, 2), dtype=np.float32)
    x[:, :, 0] = np.arange(6)
    np.savez(tmp_path / "d.npz", x=x, y=np.array(["a", "b", "a"]), lengths=np.array([6, 2, 4]))
    rows, _ = read_sequences(str(tmp_path / "d.npz"))
    assert [len(r[0]) for r in rows] == [6, 2, 4] and [r[1] for r in rows] == ["a", "b", "a"]

    x[1, 3:] = np.nan  # no lengths file: trailing all-NaN steps are padding
    np.save(tmp_path / "e.npy", x)
    np.save(tmp_path / "e_y.npy", np.array([0, 1, 0]))
    rows, _ = read_sequences(str(tmp_path / "e.npy"))
    assert [len(r[0]) for r in rows] == [6, 3, 6] and [r[1] for r in rows] == ["0", "1", "0"]

    np.savez(tmp_path / "bad.npz", x=x, y=np.array([0, 1, 0]), lengths=np.array([6, 9, 1]))
    with pytest.raises(DataError, match="sequence 1 has length 9, outside 1..6"):
        read_sequences(str(tmp_path / "bad.npz"))


def test_label_unseen_in_training_is_an_error(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.array(["a", "b", "a", "b"]))
    np.savez(tmp_path / "test.npz", x=x[:2], y=np.array(["a", "c"]))
    dm = SequenceArrayData(train_file=str(tmp_path / "train.npz"), val_file=str(tmp_path / "train.npz"),
                           test_file=str(tmp_path / "test.npz"))
    with pytest.raises(DataError, match=r"test.npz: sequence 1: label 'c' was not seen in training \(known: a, b\)"):
        dm.setup("test")


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_never_changes_a_prediction(bidirectional, pooling):
    torch.manual_seed(0)
    dm = SequenceArrayData(num_train=32, num_val=8, num_test=8, min_len=5, max_len=30)
    dm.setup("fit")
    model = SequenceModel(head=partial(ManyToOneHead, pooling=pooling),
                          rnn=partial(LSTMStack, hidden_size=16, num_layers=2, bidirectional=bidirectional),
                          spec=dm.spec).eval()
    seq = dm.train_set[0][0][:7]  # (7, F)
    longer = dm.train_set[1][0]  # forces padding of seq in a batch
    assert len(longer) > 7

    def probs(batch_seqs, pad_value, T=None):
        T = T or max(len(s) for s in batch_seqs)
        x = torch.full((len(batch_seqs), T, seq.shape[1]), pad_value)
        for i, s in enumerate(batch_seqs):
            x[i, : len(s)] = s
        batch = dm.collate([(s, 0, "") for s in batch_seqs])
        batch.inputs = x
        with torch.no_grad():
            return model.head(model(batch)).softmax(-1)[0]

    alone = probs([seq], 0.0)
    np.testing.assert_allclose(probs([seq, longer], 0.0), alone, atol=1e-6)
    np.testing.assert_allclose(probs([seq], 123.0, T=40), alone, atol=1e-6)  # odd pad value, longer pad
    np.testing.assert_allclose(probs([seq, longer], -7.0), alone, atol=1e-6)


def test_fit_and_predict_from_ts_files(tmp_path):
    """Trained on the whole .ts training file (val_fraction 0: no validation), as users of the
    UEA/UCR archives do once the epoch count is chosen."""
    rng = np.random.default_rng(1)
    lines = []
    for k in range(40):  # class = sign of the trend in dimension 1, lengths 4-9
        n, up = int(rng.integers(4, 10)), k % 2 == 0
        a = np.linspace(0, 1, n) * (1 if up else -1) + rng.normal(0, 0.05, n)
        b = rng.normal(0, 1, n)
        lines.append(",".join(f"{v:.3f}" for v in a) + ":" + ",".join(f"{v:.3f}" for v in b) + (":up" if up else ":down"))
    head = TS.split("@data")[0] + "@data\n"
    train = _ts(tmp_path, head + "\n".join(lines[:32]) + "\n", "train.ts")
    test = _ts(tmp_path, head + "\n".join(lines[32:]) + "\n", "test.ts")
    data = [f"--data.init_args.train_file={train}", "--data.init_args.val_fraction=0",
            f"--data.init_args.predict_file={test}", "--data.init_args.loader.batch_size=8"]
    config = str(CONFIGS / "seqclass.yaml")
    run_seqkit("fit", "--config", config, *data, "--trainer.max_epochs=15", "--model.rnn.init_args.hidden_size=16",
               *logger_args(tmp_path), cwd=tmp_path)
    logged = read_metrics(tmp_path)
    assert not any(r.get("val_loss") for r in logged) and last_value(logged, "train_loss_epoch") > 0
    assert max(int(r["step"]) for r in logged) == 15 * 4 - 1  # all 32 training sequences, 4 batches an epoch
    ckpt = sorted(tmp_path.rglob("*.ckpt"))[-1]
    out = tmp_path / "pred.csv"
    run_seqkit("predict", "--config", config, *data, "--model.rnn.init_args.hidden_size=16",
               f"--ckpt_path={ckpt}", f"--prediction.output={out}", *logger_args(tmp_path / "p"), cwd=tmp_path)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and set(rows[0]) == {"index", "input", "label", "p_up", "p_down"}
    assert rows[0]["input"].endswith("test.ts:10")
    assert all(abs(float(r["p_up"]) + float(r["p_down"]) - 1) < 1e-4 for r in rows)
    truth = ["up" if k % 2 == 0 else "down" for k in range(32, 40)]
    assert sum(r["label"] == t for r, t in zip(rows, truth)) >= 7, rows


def test_predict_after_the_training_files_are_deleted(tmp_path):
    """Checkpoint alone: a fit, then predict with no --config before and after the training
    files are gone; both prediction files are the same."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 6, 2)).astype(np.float32)
    y = np.array(["a", "b"] * 12)
    x[y == "a", :, 0] += 2.0
    train, val, new = tmp_path / "train.npz", tmp_path / "val.npz", tmp_path / "new.npz"
    np.savez(train, x=x[:16], y=y[:16])
    np.savez(val, x=x[16:], y=y[16:])
    np.savez(new, x=x[16:])
    config = str(CONFIGS / "seqclass.yaml")
    run_seqkit("fit", "--config", config, f"--data.init_args.train_file={train}", f"--data.init_args.val_file={val}",
               "--data.init_args.loader.batch_size=8", "--trainer.max_steps=1", "--model.rnn.init_args.hidden_size=8",
               *logger_args(tmp_path), cwd=tmp_path)
    ckpt = sorted(tmp_path.rglob("*.ckpt"))[-1]
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    predict = ["predict", f"--ckpt_path={ckpt}", f"--data.init_args.predict_file={new}"]
    run_seqkit(*predict, f"--prediction.output={before}", *logger_args(tmp_path / "p1"), cwd=tmp_path)
    train.unlink()
    val.unlink()
    run_seqkit(*predict, f"--prediction.output={after}", *logger_args(tmp_path / "p2"), cwd=tmp_path)
    assert before.read_text() == after.read_text() and len(before.read_text().splitlines()) == 9


def test_sequence_array_data_meets_the_contract(tmp_path):
    from seqkit.testing import check_datamodule

    x = np.random.default_rng(3).normal(size=(20, 7, 2)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.array(["a", "b"] * 10))
    np.savez(tmp_path / "new.npz", x=x[:3])
    report = check_datamodule(SequenceArrayData, train_file=str(tmp_path / "train.npz"), val_fraction=0.25,
                              loader={"batch_size": 4}, training_files=[str(tmp_path / "train.npz")],
                              predict_kwargs={"predict_file": str(tmp_path / "new.npz")})
    assert "predicts without training files" in report.passed


def test_marker_task_predicts_after_its_tsv_files_are_deleted(tmp_path):
    from seqkit.marker import MarkerTaskData, generate_marker_task
    from seqkit.testing import check_datamodule

    folder = tmp_path / "tsv"
    folder.mkdir()
    for split, n in (("train", 48), ("val", 16), ("test", 16)):
        rows = generate_marker_task(n, 4, 5, 12, seed={"train": 0, "val": 1, "test": 2}[split])
        (folder / f"{split}.tsv").write_text("".join(f"{label}\t{' '.join(t)}\n" for label, t in rows))
    (tmp_path / "new.txt").write_text("a b # c d\nd # a\n")
    report = check_datamodule(MarkerTaskData, data_dir=str(folder), loader={"batch_size": 8},
                              training_files=[str(folder / f"{s}.tsv") for s in ("train", "val", "test")],
                              predict_kwargs={"predict_file": str(tmp_path / "new.txt")})
    assert "predicts without training files" in report.passed
