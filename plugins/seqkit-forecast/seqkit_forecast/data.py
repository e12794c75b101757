"""Forecasting data: sliding windows over a series read from CSV, split in time order.

The series (N points) is cut chronologically: the last ``test_size`` points are the test part,
the ``val_size`` points before them the validation part, the rest the training part. A window
has ``input_length`` past points as input and the next ``horizon`` points as target. Training
windows lie entirely in the training part; a validation or test window forecasts points of its
part from the points before it (which are known at forecast time, so nothing leaks). The scaler
is fit on the training part only and undone by the head for metrics and predictions.

The targets pass through three optional steps, all undone by the head: ``transform: log``
(a multiplicative series becomes additive), ``difference: m`` (the model sees and forecasts
z_t - z_{t-m}: seasonal differencing for m = season, plain differencing for m = 1, as in Box &
Jenkins' airline model) and the scaling. Covariates are only scaled.

``window_norm`` subtracts each window's mean (of the scaled targets over its input) from inputs
and targets and adds it back to the forecast: the per-window scaling of DeepAR (Salinas et al.
2020) and RevIN (Kim et al. 2022), which lets a model trained on 1949-1958 levels forecast the
higher 1960 levels of a trending series.

Default data: AirPassengers, monthly international airline passengers 1949-1960 in thousands
(Box & Jenkins, *Time Series Analysis*, 1976, series G), shipped with this package.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from typing import Literal, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit import Batch, DataError, SeqDataModule, Spec

from seqkit_forecast.series import Scaler, Series, extend_times, read_series

Column = Union[str, int]


def bundled_csv() -> str:
    """Path of the AirPassengers CSV that ships with seqkit-forecast."""
    return str(resources.files("seqkit_forecast").joinpath("datasets", "airpassengers.csv"))


class _Windows(Dataset):
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class ForecastData(SeqDataModule):
    """Sliding windows over a CSV time series (AirPassengers by default), split in time order."""

    def __init__(
        self,
        csv_path: Optional[str] = None,
        time_column: Optional[Column] = "auto",
        target_columns: Optional[list[Column]] = None,
        covariate_columns: Optional[list[Column]] = None,
        delimiter: Optional[str] = None,
        missing: Literal["error", "interpolate"] = "error",
        input_length: int = 24,
        horizon: int = 12,
        val_size: int = 12,
        test_size: int = 12,
        stride: int = 1,
        season: int = 12,
        transform: Literal["none", "log"] = "none",
        difference: int = 0,
        scale: Literal["standard", "minmax", "none"] = "standard",
        window_norm: bool = False,
        predict_on: Literal["future", "test"] = "future",
        batch_size: int = 32,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """
        Args:
            csv_path: CSV (or .tsv) with a header row, one row per time step in time order; null
                uses the bundled AirPassengers series.
            time_column: Column of time labels (name or 0-based index); "auto" takes the first
                column when its values are not numbers or it is named time, date, t, ds, year,
                month, ...; null for none.
            target_columns: Columns to forecast (names or indices); null: every column that is
                not the time column or a covariate.
            covariate_columns: Extra input columns the model sees but does not forecast. With
                recursive forecasting their future values are read from the file (known in
                advance, like calendar features).
            delimiter: Field separator; null: tab for .tsv files, comma otherwise.
            missing: Missing cells (empty, NA, NaN, ?): "error" names the file and line;
                "interpolate" fills them linearly between neighbouring values.
            input_length: Past points the model reads for each forecast (the window).
            horizon: Points forecast at once.
            val_size: Points at the end (before the test part) held out for validation; 0 for none.
            test_size: Points at the end held out for testing.
            stride: Step between consecutive training windows.
            season: Season length for the seasonal-naive baseline and MASE (12 for monthly data;
                1 makes the baseline "repeat the last value").
            transform: "log" forecasts the logarithm (a multiplicative series such as
                AirPassengers becomes additive); values must be positive.
            difference: Lag m of differencing applied to the (transformed) targets: the model
                forecasts z_t - z_{t-m}; 12 for monthly seasonality, 1 for a trend, 0 for none.
            scale: Scaling fit on the training part only: "standard", "minmax" or "none".
            window_norm: Subtract each window's input mean from the window and add it back to
                the forecast (DeepAR / RevIN style), so levels beyond the training range forecast well.
            predict_on: What `seqkit predict` forecasts: "future" (the horizon after the last row)
                or "test" (the test part, with actuals, in windows of `horizon` points).
            batch_size: Windows per training batch (per process under DDP).
            eval_batch_size: Windows per evaluation batch (default: batch_size).
            num_workers: DataLoader worker processes.
            seed: Seed of shuffling.
        """
        super().__init__(batch_size, eval_batch_size, num_workers, seed)
        for name, value, low in (("input_length", input_length, 1), ("horizon", horizon, 1), ("stride", stride, 1),
                                 ("season", season, 1), ("val_size", val_size, 0), ("test_size", test_size, 0),
                                 ("difference", difference, 0)):
            if value < low:
                raise DataError(f"data.{name} must be >= {low}, got {value}")
        for name, size in (("val_size", val_size), ("test_size", test_size)):
            if 0 < size < horizon:
                raise DataError(f"data.{name} ({size}) is shorter than data.horizon ({horizon}): no window fits in it")
        self.csv_path = csv_path or bundled_csv()
        self.time_column, self.target_columns = time_column, target_columns
        self.covariate_columns, self.delimiter, self.missing = list(covariate_columns or []), delimiter, missing
        self.L, self.H, self.val_size, self.test_size, self.stride = input_length, horizon, val_size, test_size, stride
        self.season, self.transform, self.scale_method, self.window_norm = season, transform, scale, window_norm
        self.lag = difference
        if transform not in ("none", "log"):
            raise DataError(f"data.transform: unknown transform {transform!r}; choose none or log")
        self.predict_on = predict_on
        self.scaler: Scaler | None = None
        self.mase_scale: list[float] | None = None
        self.names: tuple[list[str], list[str]] | None = None
        self._series: Series | None = None

    # -- reading and splitting ----------------------------------------------------------------
    @property
    def series(self) -> Series:
        if self._series is None:
            s = read_series(self.csv_path, self.time_column, self.target_columns, self.covariate_columns,
                            self.delimiter, self.missing)
            if self.transform == "log":
                bad = np.argwhere(s.values[:, : len(s.targets)] <= 0)
                if len(bad):
                    r, c = bad[0]
                    raise DataError(f"{s.path}:{s.lines[r]}: data.transform=log needs positive values, but column "
                                    f"{s.targets[c]!r} has {s.values[r, c]:g}")
            if self.names is not None and (s.targets, s.covariates) != tuple(self.names):
                raise DataError(f"{s.path}: columns {s.targets + s.covariates} differ from the trained model's "
                                f"{self.names[0] + self.names[1]}")
            self._series = s
        return self._series

    @property
    def n_train(self) -> int:
        return len(self.series) - self.val_size - self.test_size

    def _check_lengths(self) -> None:
        N, need = len(self.series), self.lag + self.L + self.H
        if self.n_train < need:
            lag = f"difference {self.lag} + " if self.lag else ""
            raise DataError(
                f"{self.series.path}: the series has {N} points; after holding out val_size {self.val_size} and "
                f"test_size {self.test_size}, the training part has {self.n_train}, fewer than {lag}input_length "
                f"{self.L} + horizon {self.H} = {need} needed for one training window"
            )

    def _transformed(self, values: np.ndarray) -> np.ndarray:
        """Targets log-transformed when asked (z); covariates as they are."""
        n_t = len(self.names[0])
        z = values.copy()
        if self.transform == "log":
            z[:, :n_t] = np.log(z[:, :n_t])
        return z

    def _features(self, values: np.ndarray) -> np.ndarray:
        """The unscaled model inputs: z, with the targets differenced at lag m (NaN for t < m)."""
        n_t, m = len(self.names[0]), self.lag
        z = self._transformed(values)
        if m:
            z[m:, :n_t] = z[m:, :n_t] - z[:-m, :n_t]
            z[:m, :n_t] = np.nan
        return z

    def build_spec(self) -> Spec:
        if self.scaler is None:
            s = self.series
            self._check_lengths()
            train = s.values[: self.n_train]
            self.names = (list(s.targets), list(s.covariates))
            self.scaler = Scaler(self.scale_method).fit(self._features(train)[self.lag :])
            n_t, m = len(s.targets), self.season
            if self.n_train > m:  # in-sample seasonal-naive MAE: the MASE denominator (Hyndman & Koehler 2006)
                self.mase_scale = np.abs(train[m:, :n_t] - train[:-m, :n_t]).mean(0).tolist()
            else:
                self.mase_scale = [0.0] * n_t
        targets, covariates = self.names
        n_t = len(targets)
        sc = self.scaler.state_dict()
        return Spec(
            input_kind="features",
            input_size=n_t + len(covariates),
            num_targets=n_t,
            extra={
                "horizon": self.H,
                "input_length": self.L,
                "targets": list(targets),
                "covariates": list(covariates),
                "scaler": {"shift": sc["shift"][:n_t], "scale": sc["scale"][:n_t]},
                "transform": self.transform,
                "difference": self.lag,
                "mase_scale": list(self.mase_scale),
                "season": self.season,
            },
        )

    # -- windows ---------------------------------------------------------------------------------
    def _window(self, origin: int, scaled: np.ndarray, raw: np.ndarray, future_times: list[str] | None = None) -> dict:
        """The window that forecasts points origin..origin+H-1 from the L points before it."""
        n_t, L, H, m = len(self.names[0]), self.L, self.H, self.season
        base = self._transformed(raw[origin - self.lag : origin])[:, :n_t]  # (lag, n_t): undoes differencing
        past = scaled[origin - L : origin].copy()  # (L, F)
        future = np.full((H, scaled.shape[1]), np.nan)
        known = min(H, len(scaled) - origin)
        future[:known] = scaled[origin : origin + known]
        actual = np.full((H, n_t), np.nan)
        actual[:known] = raw[origin : origin + known, :n_t]
        naive = np.full((H, n_t), np.nan)
        for h in range(H):  # seasonal naive: the value one (or more) seasons before the target step
            src = origin + h - m * math.ceil((h + 1) / m)
            if src >= 0:
                naive[h] = raw[src, :n_t]
        offset = past[:, :n_t].mean(0) if self.window_norm else np.zeros(n_t)
        past[:, :n_t] -= offset
        future[:, :n_t] -= offset
        times = self.series.times
        if future_times is None:
            future_times = [times[origin + h] if times else str(origin + h) for h in range(H)]
        return {
            "past": torch.tensor(past, dtype=torch.float32),
            "future": torch.tensor(future, dtype=torch.float32),
            "offset": torch.tensor(offset, dtype=torch.float32),
            "actual": torch.tensor(actual, dtype=torch.float64),
            "naive": torch.tensor(naive, dtype=torch.float64),
            "base": torch.tensor(base, dtype=torch.float64),
            "times": future_times,
        }

    def _windows(self, origins: list[int]) -> _Windows:
        s = self.series
        scaled = self.scaler.apply(self._features(s.values))
        return _Windows([self._window(o, scaled, s.values) for o in origins])

    def train_origins(self) -> list[int]:
        return list(range(self.lag + self.L, self.n_train - self.H + 1, self.stride))

    def eval_origins(self, split: str) -> list[int]:
        start = self.n_train if split == "val" else self.n_train + self.val_size
        size = self.val_size if split == "val" else self.test_size
        if size == 0:
            return []
        return list(range(start, start + size - self.H + 1))

    def setup(self, stage: str) -> None:
        self.spec  # noqa: B018 - fits the scaler on the training part unless restored
        if stage == "fit":
            self._check_lengths()
            self.train_set = self._windows(self.train_origins())
        if stage in ("fit", "validate") and self.val_size:
            self.val_set = self._windows(self.eval_origins("val"))
        if stage == "test":
            if not self.test_size:
                raise DataError("data.test_size is 0: there is no test part to evaluate")
            self.test_set = self._windows(self.eval_origins("test"))
        if stage == "predict":
            self.predict_set = self._predict_windows()

    def val_dataloader(self):
        if not self.val_size:
            return []  # val_size 0: train on everything before the test part, no validation
        return super().val_dataloader()

    def _predict_windows(self) -> _Windows:
        s = self.series
        N = len(s)
        if N < self.lag + self.L:
            raise DataError(f"{s.path}: the series has {N} points, fewer than difference {self.lag} + input_length "
                            f"{self.L} needed to forecast")
        scaled = self.scaler.apply(self._features(s.values))
        if self.predict_on == "future":
            future = extend_times(s.times, self.H) if s.times else [str(N + h) for h in range(self.H)]
            return _Windows([self._window(N, scaled, s.values, future)])
        if not self.test_size:
            raise DataError("data.predict_on=test needs data.test_size > 0")
        start = N - self.test_size
        if start < self.lag + self.L:
            raise DataError(f"{s.path}: the test part starts at point {start}, before difference {self.lag} + "
                            f"input_length {self.L} points exist")
        origins = list(range(start, N - self.H + 1, self.H))
        if origins[-1] + self.H < N:  # cover the tail of the test part too
            origins.append(N - self.H)
        return _Windows([self._window(o, scaled, s.values) for o in origins])

    def history(self) -> tuple[list[str], np.ndarray]:
        """Time labels and raw target values of the whole series (for plots)."""
        s = self.series
        n_t = len(s.targets)
        return (s.times or [str(i) for i in range(len(s))]), s.values[:, :n_t]

    def collate(self, examples: list[dict]) -> Batch:
        past = torch.stack([e["past"] for e in examples])  # (B, L, F)
        B, L, F = past.shape
        return Batch(
            inputs=past,
            lengths=torch.full((B,), L, dtype=torch.long),
            targets=torch.stack([e["future"] for e in examples]),  # (B, H, F): targets then covariates
            extra={
                "offset": torch.stack([e["offset"] for e in examples]),  # (B, n_targets)
                "actual": torch.stack([e["actual"] for e in examples]),  # (B, H, n_targets), raw units
                "naive": torch.stack([e["naive"] for e in examples]),  # (B, H, n_targets), raw units
                "base": torch.stack([e["base"] for e in examples]),  # (B, lag, n_targets), transformed
                "times": [e["times"] for e in examples],
            },
        )

    # -- checkpoint state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self.scaler is None:
            return {}
        return {"scaler": self.scaler.state_dict(), "mase_scale": list(self.mase_scale), "names": [list(n) for n in self.names]}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.scaler = Scaler.from_state(state["scaler"])
            self.mase_scale = list(state["mase_scale"])
            self.names = (list(state["names"][0]), list(state["names"][1]))
