"""Forecasting head: direct multi-step or recursive forecasts, with metrics in the data's units.

``direct`` maps the stack's last output to all ``horizon`` values at once (the MIMO strategy of
Ben Taieb et al. 2012); ``autoregressive`` adds a linear map from the input window to the
forecast beside the LSTM (the highway component of LSTNet, Lai et al. 2018), which extrapolates
trends the LSTM alone learns poorly from a few dozen windows. ``recursive`` is trained to predict one step ahead at every step (teacher
forcing) and forecasts by feeding each prediction back as the next input, carrying the LSTM state
(it re-runs the model's encoder and stack through the ``encode`` argument of the head contract).

Metrics (validation and test, after undoing the window offset, the scaling and the log transform):
MAE, RMSE, MAPE and sMAPE in percent, MASE against the in-sample seasonal-naive error
(Hyndman & Koehler 2006), and the same metrics of the seasonal-naive forecast on the same windows
(``naive_mape`` and so on), so every run reports its baseline beside it.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredError, Metric, MetricCollection
from torchmetrics import SymmetricMeanAbsolutePercentageError

from seqkit import Batch, EncodeFn, Encoded, Head, SeqkitError

from seqkit_forecast.spec import ForecastBatch, ForecastSpec


class PercentMAPE(MeanAbsolutePercentageError):
    """torchmetrics' MAPE, in percent."""

    def compute(self) -> torch.Tensor:
        return 100 * super().compute()


class PercentSMAPE(SymmetricMeanAbsolutePercentageError):
    """torchmetrics' sMAPE (2|y - ŷ| / (|y| + |ŷ|)), in percent (0 to 200)."""

    def compute(self) -> torch.Tensor:
        return 100 * super().compute()


class MASE(Metric):
    """Mean absolute scaled error: |y - ŷ| divided by the in-sample seasonal-naive MAE of each
    target (Hyndman & Koehler 2006). Below 1 beats the seasonal-naive forecast's training error."""

    full_state_update = False

    def __init__(self, scale: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float64), persistent=False)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:  # (..., n_targets)
        err = (preds.double() - target.double()).abs() / self.scale.to(preds.device)
        self.total += err.sum()
        self.count += err.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count.clamp(min=1)


def _metric_set(mase_scale: list[float]) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {
        "mae": MeanAbsoluteError(),
        "rmse": MeanSquaredError(squared=False),
        "mape": PercentMAPE(),
        "smape": PercentSMAPE(),
    }
    if all(s > 0 for s in mase_scale):
        metrics["mase"] = MASE(mase_scale)
    return metrics


class ForecastHead(Head):
    """Forecasts ``horizon`` steps of every target from a window of past values."""

    spec_type = ForecastSpec
    prediction_format = "csv"

    def __init__(
        self,
        spec: ForecastSpec,
        input_size: int,
        mode: Literal["direct", "recursive"] = "direct",
        hidden_size: int = 0,
        dropout: float = 0.0,
        loss: Literal["mse", "mae", "huber"] = "mse",
        autoregressive: bool = False,
    ) -> None:
        """
        Args:
            spec: Sizes, horizon and scaler from the data module (linked automatically).
            input_size: Size of the recurrent stack's output (set by the model).
            mode: "direct": one output vector of horizon values per target; "recursive": one
                step at a time, each forecast fed back as the next input.
            hidden_size: If > 0, a hidden layer (tanh) before the output layer.
            dropout: Dropout before the output layer.
            loss: Training loss on the scaled values: "mse", "mae" or "huber" (smooth L1).
            autoregressive: Add a linear map from each target's input window to its forecast
                (LSTNet's highway; direct mode only).
        """
        super().__init__(spec, input_size)
        if spec.num_targets <= 0:
            raise SeqkitError(f"ForecastHead needs at least one target column; {spec.source or 'the data'} has none")
        if mode not in ("direct", "recursive"):
            raise SeqkitError(f"model.head.init_args.mode: unknown mode {mode!r}; choose direct or recursive")
        if loss not in ("mse", "mae", "huber"):
            raise SeqkitError(f"model.head.init_args.loss: unknown loss {loss!r}; choose mse, mae or huber")
        self.mode, self.loss_name = mode, loss
        self.H, self.n_t = int(spec.horizon), spec.num_targets
        out = self.n_t * (self.H if mode == "direct" else 1)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size > 0:
            layers += [nn.Linear(input_size, hidden_size), nn.Tanh(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_size or input_size, out))
        self.proj = nn.Sequential(*layers)
        if autoregressive and mode != "direct":
            raise SeqkitError("model.head.init_args.autoregressive needs mode: direct")
        # (L -> H) shared by the targets, applied to each target's window
        self.ar = nn.Linear(int(spec.input_length), self.H) if autoregressive else None
        self.log_transform = spec.transform == "log"
        self.lag = int(spec.difference)
        self.register_buffer("shift", torch.tensor(spec.shift, dtype=torch.float64), persistent=False)
        self.register_buffer("scale", torch.tensor(spec.scale, dtype=torch.float64), persistent=False)
        mase_scale = list(spec.mase_scale or [0.0] * self.n_t)
        if not all(s > 0 for s in mase_scale):
            warnings.warn("MASE is not reported: the training part's seasonal differences are all zero "
                          "(a constant or purely seasonal series)", stacklevel=2)
        def collection(scale: list[float]) -> MetricCollection:
            metrics = _metric_set(scale)
            metrics.update({f"naive_{k}": v for k, v in _metric_set(scale).items()})
            # members are updated one by one (model and baseline get different inputs): no compute groups
            return MetricCollection(metrics, compute_groups=False)

        self.set_metrics(collection(mase_scale))
        del self.train_metrics  # metrics need a forecast of the whole horizon: validation and test only
        # test MASE is scaled on all data before the test part (training + validation)
        test_scale = list(getattr(spec, "test_mase_scale", None) or mase_scale)
        if all(s > 0 for s in test_scale) == all(s > 0 for s in mase_scale):
            self.test_metrics = collection(test_scale).clone(prefix="test_")

    def monitor(self) -> tuple[str, str]:
        # MASE: scale-free and against the seasonal naive forecast (absent for a flat series)
        return ("val_mase", "min") if "mase" in self.val_metrics else ("val_loss", "min")

    # -- forecasting ---------------------------------------------------------------------------
    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mae":
            return F.l1_loss(pred, target)
        if self.loss_name == "huber":
            return F.smooth_l1_loss(pred, target)
        return F.mse_loss(pred, target)

    def forecast(self, encoded: Encoded, batch: ForecastBatch, encode: EncodeFn) -> torch.Tensor:
        """(B, H, n_targets) forecasts in the scaled, window-normalised units of the inputs."""
        B = encoded.outputs.shape[0]
        last = encoded.outputs[:, -1]  # (B, D): windows are never padded
        if self.mode == "direct":
            pred = self.proj(last).view(B, self.H, self.n_t)
            if self.ar is not None:
                window = batch.inputs[:, :, : self.n_t].transpose(1, 2)  # (B, n_t, L)
                pred = pred + self.ar(window).transpose(1, 2)  # (B, H, n_t)
            return pred
        covariates = batch.covariates  # (B, H, C): future covariates, known in advance
        if covariates.shape[-1] and torch.isnan(covariates[:, : self.H - 1]).any():
            raise SeqkitError("recursive forecasting with covariates needs their future values, which the data "
                              "does not have past its last row; use mode: direct or add the covariate rows")
        step = self.proj(last)  # (B, n_t)
        preds, state = [step], encoded.state
        ones = torch.ones(B, dtype=torch.long, device=last.device)
        for h in range(1, self.H):
            x = torch.cat([step, covariates[:, h - 1]], -1).unsqueeze(1)  # (B, 1, F)
            out = encode(Batch(inputs=x, lengths=ones), state)
            state = out.state
            step = self.proj(out.outputs[:, -1])
            preds.append(step)
        return torch.stack(preds, 1)  # (B, H, n_t)

    def to_units(self, pred: torch.Tensor, batch: ForecastBatch) -> torch.Tensor:
        """Undo the window offset, the scaling, the differencing and the log transform:
        (B, H, n_t) in data units."""
        x = (pred.double() + batch.offset.double().unsqueeze(1)) * self.scale + self.shift  # (B, H, n_t)
        if self.lag:  # z_t = z_{t-m} + d_t, from the m known values before the origin onwards
            base = batch.base.double()  # (B, m, n_t)
            z: list[torch.Tensor] = []
            for h in range(self.H):
                z.append((base[:, h] if h < self.lag else z[h - self.lag]) + x[:, h])
            x = torch.stack(z, 1)
        return torch.exp(x) if self.log_transform else x

    def _teacher_forced(self, batch: ForecastBatch, encode: EncodeFn) -> torch.Tensor:
        """(B, L+H-1, n_t): recursive training's predictions of each next step, the true past and
        future as inputs (teacher forcing)."""
        future = torch.cat([batch.targets, batch.covariates], -1)  # (B, H, F)
        seq = torch.cat([batch.inputs, future[:, :-1]], 1)  # (B, L+H-1, F)
        B, T, _ = seq.shape
        out = encode(Batch(inputs=seq, lengths=torch.full((B,), T, dtype=torch.long)), None)
        return self.proj(out.outputs)

    def output(self, encoded: Encoded, batch: ForecastBatch, encode: EncodeFn) -> torch.Tensor:
        """The forecasts an ensemble averages (scaled units); in training, what the loss reads."""
        if self.training and self.mode == "recursive":
            return self._teacher_forced(batch, encode)
        return self.forecast(encoded, batch, encode)

    def loss_from(self, output: torch.Tensor, batch: ForecastBatch, stage: str, update_metrics: bool = True) -> torch.Tensor:
        if stage == "train" and self.mode == "recursive":  # every step predicts the next one
            target = torch.cat([batch.inputs[:, 1:, : self.n_t], batch.targets], 1)
            if output.shape != target.shape:
                raise SeqkitError("ForecastHead (recursive) trains on teacher-forced outputs: call output() with "
                                  "the head in training mode during the training stage")
            return self._loss(output, target)
        loss = self._loss(output, batch.targets)  # (B, H, n_t)
        metrics = self.metrics(stage) if update_metrics else None
        if metrics is not None:
            actual, naive = batch.actual, batch.naive  # (B, H, n_t), data units
            yhat = self.to_units(output.detach(), batch)
            has_naive = ~torch.isnan(naive).flatten(1).any(1)  # windows with a season of history before them
            for name, metric in metrics.items(keep_base=True):
                if name.startswith("naive_"):
                    if not has_naive.any():
                        continue
                    p, y = naive[has_naive], actual[has_naive]
                else:
                    p, y = yhat, actual
                if isinstance(metric, MASE):
                    metric.update(p, y)
                else:
                    metric.update(p.flatten(), y.flatten())
        return loss

    def loss(self, encoded: Encoded, batch: ForecastBatch, stage: str, encode: EncodeFn) -> torch.Tensor:
        if stage == "train" and self.mode == "recursive":
            return self.loss_from(self._teacher_forced(batch, encode), batch, stage)
        return self.loss_from(self.forecast(encoded, batch, encode), batch, stage)

    def predict(self, encoded: Encoded, batch: ForecastBatch, encode: EncodeFn) -> list[dict]:
        """One record per forecast step and target: ``time``, ``series`` (several targets only),
        ``actual`` (empty past the end of the data) and ``forecast``, in data units. The index
        ``(example * H + step) * n_targets + target`` keeps them in time order."""
        return self.predict_from(self.forecast(encoded, batch, encode), encoded, batch)

    def predict_from(self, output: torch.Tensor, encoded: Encoded, batch: ForecastBatch) -> list[dict]:
        yhat = self.to_units(output.detach(), batch).cpu()  # (B, H, n_t)
        actual = batch.actual.cpu()
        names = self.spec.targets
        records = []
        for b, i in enumerate(batch.index.tolist()):
            for h in range(self.H):
                for j, name in enumerate(names):
                    rec = {"index": (i * self.H + h) * self.n_t + j, "time": batch.times[b][h]}
                    if self.n_t > 1:
                        rec["series"] = name
                    a = float(actual[b, h, j])
                    rec["actual"] = "" if math.isnan(a) else round(a, 6)
                    rec["forecast"] = round(float(yhat[b, h, j]), 6)
                    records.append(rec)
        return records
