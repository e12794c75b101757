"""Forecasting (ForecastData + ForecastHead): the bundled AirPassengers series, a chronological
split without leakage, undoing the transforms, bad inputs, the contract checks, and fit + predict
through the CLI (also from the checkpoint alone, with the training file deleted)."""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CONFIGS, last_value, logger_args, read_metrics, run_seqkit
from seqkit import DataError, LSTMStack, SequenceModel
from seqkit.testing import check_datamodule, check_head
from seqkit_forecast import ForecastBatch, ForecastData, ForecastHead, ForecastSpec
from seqkit_forecast.data import bundled_csv
from seqkit_forecast.series import extend_times

AIR = np.loadtxt(bundled_csv(), delimiter=",", skiprows=1, usecols=1)


def _csv(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _batch(dm, dataset, n=None):
    items = [dataset[i] for i in range(n or len(dataset))]
    batch = dm.collate(items)
    batch.index = torch.arange(len(items))
    return batch


def _loss(model, batch, stage):
    return model.head.loss(model.encode(batch), batch, stage, model.encode)


def test_bundled_airpassengers_is_box_jenkins_series_g():
    assert len(AIR) == 144 and AIR.sum() == 40363
    assert AIR[:3].tolist() == [112, 118, 132] and AIR[-1] == 432 and AIR.max() == 622


def test_chronological_split_scaler_fit_on_training_part_only():
    dm = ForecastData(input_length=24, horizon=12, val_size=12, test_size=12, transform="log")
    dm.setup("fit")
    dm.setup("test")
    assert dm.n_train == 120 and isinstance(dm.spec, ForecastSpec)
    # the scaler saw 1949-1958 only
    np.testing.assert_allclose(dm.scaler.shift[0], np.log(AIR[:120]).mean())
    # no training target reaches into validation or test
    last_train = dm.train_origins()[-1] + 12
    assert last_train == 120 and dm.eval_origins("val") == [120] and dm.eval_origins("test") == [132]
    test = _batch(dm, dm.test_set)
    assert isinstance(test, ForecastBatch)
    np.testing.assert_array_equal(test.actual[0, :, 0].numpy(), AIR[132:])
    np.testing.assert_array_equal(test.naive[0, :, 0].numpy(), AIR[120:132])  # 1960 forecast = 1959


@pytest.mark.parametrize("kwargs", [{}, {"transform": "log", "window_norm": True},
                                    {"transform": "log", "difference": 12}, {"difference": 1, "scale": "minmax"}])
def test_head_undoes_every_transform(kwargs):
    dm = ForecastData(input_length=24, **kwargs)
    dm.setup("test")
    batch = _batch(dm, dm.test_set)
    head = ForecastHead(dm.spec, 8)
    units = head.to_units(batch.targets, batch)  # a perfect forecast in model units
    np.testing.assert_allclose(units[0, :, 0].numpy(), AIR[132:], rtol=1e-5)


@pytest.mark.parametrize("mode", ["direct", "recursive"])
def test_both_modes_train_and_forecast_the_horizon(mode):
    torch.manual_seed(0)
    dm = ForecastData(input_length=12, horizon=6, val_size=6, test_size=6, transform="log", window_norm=True)
    dm.setup("fit")
    model = SequenceModel(head=lambda spec, size: ForecastHead(spec, size, mode=mode),
                          rnn=lambda size: LSTMStack(size, hidden_size=8), spec=dm.spec)
    batch = _batch(dm, dm.train_set, 8)
    loss = _loss(model, batch, "train")
    loss.backward()
    assert torch.isfinite(loss) and model.head.proj[-1].weight.grad.abs().sum() > 0
    val = _batch(dm, dm.val_set)
    _loss(model, val, "val")
    values = {k: float(v) for k, v in model.head.metrics("val").compute().items()}
    assert {"val_mape", "val_smape", "val_mase", "val_naive_mape"} <= set(values)
    assert all(math.isfinite(v) for v in values.values())
    records = model.head.predict(model.encode(val), val, model.encode)
    assert [r["index"] for r in records] == list(range(6)) and all(math.isfinite(r["forecast"]) for r in records)


def test_constant_series_divides_by_nothing(tmp_path):
    path = _csv(tmp_path, "t,v\n" + "".join(f"{k},5\n" for k in range(40)))
    dm = ForecastData(csv_path=path, input_length=8, horizon=4, val_size=4, test_size=4, season=4)
    dm.setup("test")
    assert dm.scaler.scale.tolist() == [1.0]  # zero spread: scaled by 1
    batch = _batch(dm, dm.test_set)
    assert torch.isfinite(batch.inputs).all()
    with pytest.warns(UserWarning, match="MASE is not reported"):
        head = ForecastHead(dm.spec, 4)
    model = SequenceModel(head=lambda spec, size: head, rnn=lambda size: LSTMStack(size, hidden_size=4), spec=dm.spec)
    _loss(model, batch, "test")
    values = {k: float(v) for k, v in model.head.metrics("test").compute().items()}
    assert "test_mase" not in values and all(math.isfinite(v) for v in values.values()), values
    assert values["test_naive_mape"] == 0.0


def test_malformed_row_and_missing_values_name_the_line(tmp_path):
    bad = _csv(tmp_path, "t,v\n1,2\n2,3,4\n3,5\n")
    with pytest.raises(DataError, match=r"s.csv:3: expected 2 fields like the header, found 3"):
        ForecastData(csv_path=bad, input_length=1, horizon=1, val_size=0, test_size=0).setup("fit")
    short = _csv(tmp_path, "t,v\n1,2\n2\n3,5\n", "short.csv")
    with pytest.raises(DataError, match=r"short.csv:3: expected 2 fields like the header, found 1"):
        ForecastData(csv_path=short, input_length=1, horizon=1, val_size=0, test_size=0).setup("fit")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        dm = ForecastData(csv_path=short, on_bad="skip", input_length=1, horizon=1, val_size=0, test_size=0)
        assert dm.series.values[:, 0].tolist() == [2, 5] and dm.series.lines == [2, 4]
    text = "t,v\n" + "".join(f"{k},{'' if k == 5 else k}\n" for k in range(30))
    gap = _csv(tmp_path, text, "gap.csv")
    with pytest.raises(DataError, match=r"gap.csv:7: missing value in column 'v'"):
        ForecastData(csv_path=gap, input_length=4, horizon=2, val_size=2, test_size=2).setup("fit")
    dm = ForecastData(csv_path=gap, input_length=4, horizon=2, val_size=2, test_size=2, missing="interpolate")
    assert dm.series.values[5, 0] == 5.0  # filled between 4 and 6
    word = _csv(tmp_path, "t,v\n1,2\n\n2,three\n", "word.csv")
    with pytest.raises(DataError, match=r"word.csv:4: column 'v': 'three' is not a number"):
        ForecastData(csv_path=word, input_length=1, horizon=1, val_size=0, test_size=0).setup("fit")
    order = _csv(tmp_path, "date,v\n2000-01,1\n2000-03,2\n2000-02,3\n", "order.csv")
    with pytest.raises(DataError, match=r"order.csv:4: time '2000-02' does not come after '2000-03' \(line 3\)"):
        ForecastData(csv_path=order, input_length=1, horizon=1, val_size=0, test_size=0).setup("fit")
    with pytest.raises(DataError, match=r"data.init_args.csv_path: file not found: .*nowhere.csv"):
        ForecastData(csv_path=str(tmp_path / "nowhere.csv")).setup("fit")  # checked lazily, not in __init__


def test_window_longer_than_series_gives_the_numbers(tmp_path):
    with pytest.raises(DataError, match=r"the series has 144 points; .* training part has 120, fewer than "
                                        r"input_length 120 \+ horizon 12 = 132"):
        ForecastData(input_length=120, horizon=12, val_size=12, test_size=12).setup("fit")
    with pytest.raises(DataError, match=r"test_size \(6\) is shorter than data.init_args.horizon \(12\)"):
        ForecastData(test_size=6)


def test_covariates_and_future_times(tmp_path):
    rows = "".join(f"2000-{m:02d}-01,{10 + m},{m % 3}\n" for m in range(1, 13))
    path = _csv(tmp_path, "date,sales,promo\n" + rows)
    dm = ForecastData(csv_path=path, covariate_columns=["promo"], input_length=4, horizon=2, val_size=2,
                      test_size=2, season=1, predict_on="future")
    assert dm.spec.input_size == 2 and dm.spec.targets == ["sales"] and dm.spec.covariates == ["promo"]
    dm.setup("predict")
    assert dm.predict_set[0]["times"] == ["2001-01-01", "2001-02-01"]
    batch = _batch(dm, dm.predict_set)
    assert batch.targets.shape == (1, 2, 1) and batch.covariates.shape == (1, 2, 1)
    assert extend_times(["1960-11", "1960-12"], 2) == ["1961-01", "1961-02"]
    assert extend_times(["3", "5"], 2) == ["7", "9"]


def test_contract_checks(tmp_path):
    train = tmp_path / "train.csv"
    shutil.copy(bundled_csv(), train)
    recent = tmp_path / "recent.csv"  # predict forecasts from its own copy of the history
    shutil.copy(bundled_csv(), recent)
    small = dict(input_length=12, horizon=6, val_size=12, test_size=12, transform="log", window_norm=True,
                 loader={"batch_size": 16})
    check_datamodule(ForecastData, csv_path=str(train), training_files=[str(train)],
                     predict_kwargs={"predict_file": str(recent)}, **small)
    check_head(ForecastHead, ForecastData(**small), rnn=lambda size: LSTMStack(size, hidden_size=8))
    check_head(ForecastHead, ForecastData(**small), head_args={"mode": "recursive"},
               rnn=lambda size: LSTMStack(size, hidden_size=8))


def _predictions(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_fit_test_naive_and_predict_csv_png_then_from_checkpoint_alone(tmp_path):
    # training data in its own file, and a copy of the history for predict to forecast from
    train, recent = tmp_path / "train.csv", tmp_path / "recent.csv"
    shutil.copy(bundled_csv(), train)
    shutil.copy(bundled_csv(), recent)
    common = ["--config", str(CONFIGS / "forecast.yaml"), "--trainer.check_val_every_n_epoch=1",
              "--data.init_args.input_length=24", f"--data.init_args.csv_path={train}",
              f"--data.init_args.predict_file={recent}"]
    run_seqkit("fit", *common, "--trainer.max_epochs=3", "--model.rnn.init_args.hidden_size=16",
               *logger_args(tmp_path), cwd=tmp_path)
    rows = read_metrics(tmp_path)
    # the seasonal-naive baseline of 1959 (= 1958), computed in the same run
    naive = 100 * np.mean(np.abs(AIR[108:120] - AIR[120:132]) / AIR[120:132])
    assert last_value(rows, "val_naive_mape") == pytest.approx(naive, rel=1e-4)
    assert math.isfinite(last_value(rows, "val_mape")) and math.isfinite(last_value(rows, "val_smape"))

    ckpt = sorted(tmp_path.rglob("*.ckpt"))[-1]
    out = tmp_path / "forecast.csv"
    run_seqkit("predict", *common, "--model.rnn.init_args.hidden_size=16", f"--ckpt_path={ckpt}",
               f"--prediction.output={out}", *logger_args(tmp_path / "p"), cwd=tmp_path)
    table = _predictions(out)
    assert [r["time"] for r in table] == [f"1960-{m:02d}" for m in range(1, 13)]
    assert [float(r["actual"]) for r in table] == AIR[132:].tolist()
    assert all(100 < float(r["forecast"]) < 1000 for r in table)
    with Image.open(tmp_path / "forecast.png") as png:
        assert png.format == "PNG" and png.size[0] > 500

    # the checkpoint alone (its config, its fitted scaler), with the training file gone
    train.unlink()
    after = tmp_path / "after.csv"
    run_seqkit("predict", f"--ckpt_path={ckpt}", f"--prediction.output={after}", *logger_args(tmp_path / "p2"),
               cwd=tmp_path)
    assert _predictions(after) == table
    assert (tmp_path / "after.png").exists()  # ForecastPlot came with the checkpoint's config


@pytest.mark.parametrize("mode", ["direct", "recursive"])
def test_an_ensemble_forecasts_the_mean_of_its_members_in_scaled_units(mode):
    """model.ensemble: each member's forecast, the ensemble's is their mean before the transforms
    are undone (with transform: log, the geometric mean in data units)."""
    from functools import partial

    dm = ForecastData(input_length=12, horizon=6, val_size=6, test_size=6, transform="log", window_norm=True)
    dm.setup("test")
    torch.manual_seed(0)
    model = SequenceModel(head=partial(ForecastHead, mode=mode), rnn=partial(LSTMStack, hidden_size=8),
                          spec=dm.spec, ensemble=3).eval()
    batch = _batch(dm, dm.test_set)
    with torch.no_grad():
        got = [r["forecast"] for r in model.predict_step(batch, 0)]
        members = []
        for enc, rnn, head in model.members():
            solo = SequenceModel(head=partial(ForecastHead, mode=mode), rnn=partial(LSTMStack, hidden_size=8),
                                 spec=dm.spec).eval()
            for mine, theirs in ((solo.encoder, enc), (solo.rnn, rnn), (solo.head, head)):
                mine.load_state_dict(theirs.state_dict())
            members.append([r["forecast"] for r in solo.predict_step(batch, 0)])
    geometric = np.exp(np.log(np.array(members)).mean(0))
    assert len(set(map(tuple, members))) == 3  # the members differ
    np.testing.assert_allclose(got, geometric, rtol=1e-5)


def test_test_mase_is_scaled_on_all_data_before_the_test_part_validation_on_the_training_part():
    from functools import partial

    dm = ForecastData(input_length=24, horizon=12, val_size=12, test_size=12)
    dm.setup("fit")
    before_val, before_test = np.abs(AIR[12:120] - AIR[:108]).mean(), np.abs(AIR[12:132] - AIR[:120]).mean()
    assert dm.mase_scale == pytest.approx([before_val]) and dm.test_mase_scale == pytest.approx([before_test])
    model = SequenceModel(head=ForecastHead, rnn=partial(LSTMStack, hidden_size=4), spec=dm.spec)
    assert float(model.head.val_metrics["mase"].scale) == pytest.approx(before_val)
    assert float(model.head.test_metrics["mase"].scale) == pytest.approx(before_test)
    # a checkpoint saved before test_mase_scale existed still loads (test MASE then as before)
    old = {k: v for k, v in dm.state_dict().items() if k != "test_mase_scale"}
    restored = ForecastData(input_length=24, horizon=12, val_size=12, test_size=12)
    restored.load_state_dict(old)
    assert restored.spec.test_mase_scale == pytest.approx([before_val])


def test_a_recursive_ensemble_trains_each_member_teacher_forced():
    from functools import partial

    dm = ForecastData(input_length=12, horizon=6, val_size=6, test_size=6)
    dm.setup("fit")
    torch.manual_seed(0)
    model = SequenceModel(head=partial(ForecastHead, mode="recursive"), rnn=partial(LSTMStack, hidden_size=8),
                          spec=dm.spec, ensemble=2).train()
    batch = _batch(dm, dm.train_set, 8)
    total = model.training_step(batch, 0)
    alone = 0.0
    for enc, rnn, head in model.members():
        solo = SequenceModel(head=partial(ForecastHead, mode="recursive"), rnn=partial(LSTMStack, hidden_size=8),
                             spec=dm.spec).train()
        for mine, theirs in ((solo.encoder, enc), (solo.rnn, rnn), (solo.head, head)):
            mine.load_state_dict(theirs.state_dict())
        alone = alone + _loss(solo, batch, "train")  # the single model's teacher-forced loss
    torch.testing.assert_close(total, alone)
