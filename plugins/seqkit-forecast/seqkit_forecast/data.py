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

The fitted state (the scaler, the MASE denominators and the column names) is declared in
``fitted``, so a module restored from a checkpoint forecasts from ``predict_file`` (recent
history) without reading ``csv_path``, the training data, again.

Default data: AirPassengers, monthly international airline passengers 1949-1960 in thousands
(Box & Jenkins, *Time Series Analysis*, 1976, series G), shipped with this package.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Literal, Optional, Union

import numpy as np
import torch

from seqkit import DataError, Examples, OnBad, SeqDataModule

from seqkit_forecast.series import Scaler, Series, extend_times, read_series
from seqkit_forecast.spec import ForecastBatch, ForecastSpec

Column = Union[str, int]


def bundled_csv() -> str:
    """Path of the AirPassengers CSV that ships with seqkit-forecast."""
    return str(resources.files("seqkit_forecast").joinpath("datasets", "airpassengers.csv"))


class ForecastData(SeqDataModule):
    """Sliding windows over a CSV time series (AirPassengers by default), split in time order."""

    spec_type = ForecastSpec
    fitted = {"scaler": Scaler, "mase_scale": list, "test_mase_scale": list, "targets": list, "covariates": list}

    def __init__(
        self,
        csv_path: Optional[str] = None,
        predict_file: Optional[str] = None,
        time_column: Optional[Column] = "auto",
        target_columns: Optional[list[Column]] = None,
        covariate_columns: Optional[list[Column]] = None,
        delimiter: Optional[str] = None,
        missing: Literal["error", "interpolate"] = "error",
        on_bad: OnBad = "error",
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
        **kwargs,
    ) -> None:
        """
        Args:
            csv_path: CSV (or .tsv) with a header row, one row per time step in time order; null
                uses the bundled AirPassengers series.
            predict_file: The series `seqkit predict` forecasts from (the same columns, its most
                recent rows at the end); null: csv_path. With it, predicting from a checkpoint
                never reads csv_path.
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
            on_bad: Rows with more or fewer fields than the header: "error" names the file and
                line; "skip" drops them (with a warning).
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
        """
        super().__init__(**kwargs)
        for name, value, low in (("input_length", input_length, 1), ("horizon", horizon, 1), ("stride", stride, 1),
                                 ("season", season, 1), ("val_size", val_size, 0), ("test_size", test_size, 0),
                                 ("difference", difference, 0)):
            if value < low:
                raise DataError(f"data.init_args.{name} must be >= {low}, got {value}")
        for name, size in (("val_size", val_size), ("test_size", test_size)):
            if 0 < size < horizon:
                raise DataError(f"data.init_args.{name} ({size}) is shorter than data.init_args.horizon ({horizon}): "
                                "no window fits in it")
        if transform not in ("none", "log"):
            raise DataError(f"data.init_args.transform: unknown transform {transform!r}; choose none or log")
        Scaler(scale)  # an unknown method fails here, not after reading the data
        self.csv_path, self.predict_file = csv_path or bundled_csv(), predict_file
        self.time_column, self.target_columns = time_column, target_columns
        self.covariate_columns, self.delimiter = list(covariate_columns or []), delimiter
        self.missing, self.on_bad = missing, on_bad
        self.L, self.H, self.val_size, self.test_size, self.stride = input_length, horizon, val_size, test_size, stride
        self.season, self.transform, self.scale_method, self.window_norm = season, transform, scale, window_norm
        self.lag = difference
        self.predict_on = predict_on
        self._series: dict[str, Series] = {}

    # -- reading and splitting ----------------------------------------------------------------
    def _read(self, key: str) -> Series:
        """The series in the file of argument ``key`` (csv_path or predict_file), read once."""
        path = self.split_file(key)
        if path not in self._series:
            s = read_series(path, self.time_column, self.target_columns, self.covariate_columns,
                            self.delimiter, self.missing, self.on_bad)
            if self.transform == "log":
                bad = np.argwhere(s.values[:, : len(s.targets)] <= 0)
                if len(bad):
                    r, c = bad[0]
                    raise DataError(f"{s.path}:{s.lines[r]}: data.init_args.transform=log needs positive values, "
                                    f"but column {s.targets[c]!r} has {s.values[r, c]:g}")
            if self.targets is not None and (s.targets, s.covariates) != (self.targets, self.covariates):
                raise DataError(f"{s.path}: columns {s.targets + s.covariates} differ from the trained model's "
                                f"{self.targets + self.covariates}")
            self._series[path] = s
        return self._series[path]

    @property
    def series(self) -> Series:
        """The training series (csv_path, or the bundled AirPassengers)."""
        return self._read("csv_path")

    @property
    def predict_series(self) -> Series:
        """The series `seqkit predict` forecasts from: predict_file, or the training series."""
        return self._read("predict_file") if self.predict_file is not None else self.series

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
        n_t = len(self.targets)
        z = values.copy()
        if self.transform == "log":
            z[:, :n_t] = np.log(z[:, :n_t])
        return z

    def _features(self, values: np.ndarray) -> np.ndarray:
        """The unscaled model inputs: z, with the targets differenced at lag m (NaN for t < m)."""
        n_t, m = len(self.targets), self.lag
        z = self._transformed(values)
        if m:
            z[m:, :n_t] = z[m:, :n_t] - z[:-m, :n_t]
            z[:m, :n_t] = np.nan
        return z

    def fit_state(self) -> None:
        s = self.series
        self._check_lengths()
        train = s.values[: self.n_train]
        self.targets, self.covariates = list(s.targets), list(s.covariates)
        self.scaler = Scaler(self.scale_method).fit(self._features(train)[self.lag :])
        n_t, m = len(s.targets), self.season
        # in-sample seasonal-naive MAE: the MASE denominator (Hyndman & Koehler 2006), over all the
        # data before the forecast origin - the training part for validation, training and
        # validation for the test part (as statsmodels and Darts users compute it)
        before_test = s.values[: self.n_train + self.val_size]
        self.mase_scale, self.test_mase_scale = (
            np.abs(part[m:, :n_t] - part[:-m, :n_t]).mean(0).tolist() if len(part) > m else [0.0] * n_t
            for part in (train, before_test))

    def load_state_dict(self, state: dict) -> None:
        if state and "test_mase_scale" not in state:  # a checkpoint from before it was kept
            state = {**state, "test_mase_scale": state.get("mase_scale")}
        super().load_state_dict(state)

    def build_spec(self) -> ForecastSpec:
        n_t = len(self.targets)
        return ForecastSpec(
            input_kind="features",
            input_size=n_t + len(self.covariates),
            num_targets=n_t,
            horizon=self.H,
            input_length=self.L,
            targets=list(self.targets),
            covariates=list(self.covariates),
            shift=[float(v) for v in self.scaler.shift[:n_t]],
            scale=[float(v) for v in self.scaler.scale[:n_t]],
            transform=self.transform,
            difference=self.lag,
            mase_scale=[float(v) for v in self.mase_scale],
            test_mase_scale=[float(v) for v in self.test_mase_scale],
            season=self.season,
        )

    # -- windows ---------------------------------------------------------------------------------
    def _window(self, s: Series, origin: int, scaled: np.ndarray, future_times: list[str] | None = None) -> dict:
        """The window that forecasts points origin..origin+H-1 from the L points before it."""
        raw = s.values
        n_t, L, H, m = len(self.targets), self.L, self.H, self.season
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
        if future_times is None:
            future_times = [s.times[origin + h] if s.times else str(origin + h) for h in range(H)]
        return {
            "past": torch.tensor(past, dtype=torch.float32),
            "future": torch.tensor(future, dtype=torch.float32),
            "offset": torch.tensor(offset, dtype=torch.float32),
            "actual": torch.tensor(actual, dtype=torch.float64),
            "naive": torch.tensor(naive, dtype=torch.float64),
            "base": torch.tensor(base, dtype=torch.float64),
            "times": future_times,
        }

    def _windows(self, s: Series, origins: list[int], future_times: list[str] | None = None) -> Examples:
        scaled = self.scaler.apply(self._features(s.values))
        items = [self._window(s, o, scaled, future_times) for o in origins]
        return Examples(items, lengths=[self.L] * len(items))  # every window has L steps

    def train_origins(self) -> list[int]:
        return list(range(self.lag + self.L, self.n_train - self.H + 1, self.stride))

    def eval_origins(self, split: str) -> list[int]:
        start = self.n_train if split == "val" else self.n_train + self.val_size
        size = self.val_size if split == "val" else self.test_size
        if size == 0:
            return []
        return list(range(start, start + size - self.H + 1))

    def dataset(self, split: str) -> Examples:
        if split == "predict":
            return self._predict_windows()
        self._check_lengths()
        if split == "train":
            return self._windows(self.series, self.train_origins())
        if split == "test" and not self.test_size:
            raise DataError("data.init_args.test_size is 0: there is no test part to evaluate")
        return self._windows(self.series, self.eval_origins(split))

    def val_dataloader(self):
        if not self.val_size:
            return []  # val_size 0: train on everything before the test part, no validation
        return super().val_dataloader()

    def _predict_windows(self) -> Examples:
        s = self.predict_series
        N = len(s)
        if N < self.lag + self.L:
            raise DataError(f"{s.path}: the series has {N} points, fewer than difference {self.lag} + input_length "
                            f"{self.L} needed to forecast")
        if self.predict_on == "future":
            future = extend_times(s.times, self.H) if s.times else [str(N + h) for h in range(self.H)]
            return self._windows(s, [N], future)
        if not self.test_size:
            raise DataError("data.init_args.predict_on=test needs data.init_args.test_size > 0")
        start = N - self.test_size
        if start < self.lag + self.L:
            raise DataError(f"{s.path}: the test part starts at point {start}, before difference {self.lag} + "
                            f"input_length {self.L} points exist")
        origins = list(range(start, N - self.H + 1, self.H))
        if origins[-1] + self.H < N:  # cover the tail of the test part too
            origins.append(N - self.H)
        return self._windows(s, origins)

    def history(self) -> tuple[list[str], np.ndarray]:
        """Time labels and raw target values of the series predict forecasts from (for plots)."""
        s = self.predict_series
        n_t = len(s.targets)
        return (s.times or [str(i) for i in range(len(s))]), s.values[:, :n_t]

    def collate(self, examples: list[dict]) -> ForecastBatch:
        past = torch.stack([e["past"] for e in examples])  # (B, L, F)
        future = torch.stack([e["future"] for e in examples])  # (B, H, F): targets then covariates
        B, L, F = past.shape
        n_t = len(self.targets)
        return ForecastBatch(
            inputs=past,
            lengths=torch.full((B,), L, dtype=torch.long),
            targets=future[:, :, :n_t],  # (B, H, n_targets)
            covariates=future[:, :, n_t:],  # (B, H, C)
            offset=torch.stack([e["offset"] for e in examples]),  # (B, n_targets)
            actual=torch.stack([e["actual"] for e in examples]),  # (B, H, n_targets), raw units
            naive=torch.stack([e["naive"] for e in examples]),  # (B, H, n_targets), raw units
            base=torch.stack([e["base"] for e in examples]),  # (B, lag, n_targets), transformed
            times=[e["times"] for e in examples],
        )
