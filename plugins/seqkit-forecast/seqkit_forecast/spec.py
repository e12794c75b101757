"""The typed task facts of forecasting: ``ForecastSpec`` (what the data module tells the head)
and ``ForecastBatch`` (what every batch of windows carries beside inputs and targets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from seqkit import Batch, Spec


@dataclass
class ForecastSpec(Spec):
    """What a forecasting head needs to know about the data, beside the sizes of ``Spec``."""

    horizon: int = 1
    """Points forecast at once (H)."""
    input_length: int = 1
    """Past points in each input window (L)."""
    targets: list[str] = field(default_factory=list)
    """Names of the forecast columns, in the order of the model's outputs."""
    covariates: list[str] = field(default_factory=list)
    """Names of the extra input columns (after the targets in every input step)."""
    shift: list[float] = field(default_factory=list)
    """The targets' scaler, fit on the training part: scaled = (z - shift) / scale."""
    scale: list[float] = field(default_factory=list)
    """See ``shift``."""
    transform: str = "none"
    """"log" when the model forecasts the logarithm of the targets."""
    difference: int = 0
    """Lag m of differencing: the model forecasts z_t - z_{t-m} (0: none)."""
    mase_scale: list[float] = field(default_factory=list)
    """In-sample seasonal-naive MAE of each target over the training part: the validation MASE
    denominators (0: not reported)."""
    test_mase_scale: list[float] = field(default_factory=list)
    """The same over all data before the test part (training and validation): the test MASE
    denominators. Empty: ``mase_scale``."""
    season: int = 1
    """Season length of the seasonal-naive baseline."""


@dataclass
class ForecastBatch(Batch):
    """Windows: ``inputs`` (B, L, F) past targets then covariates, scaled and window-normalised;
    ``targets`` (B, H, n_targets) the next H target values in the same units."""

    covariates: Optional[torch.Tensor] = None
    """(B, H, C) the covariates over the forecast steps (NaN past the end of the data)."""
    offset: Optional[torch.Tensor] = None
    """(B, n_targets) the window mean subtracted by ``window_norm`` (zeros without it)."""
    actual: Optional[torch.Tensor] = None
    """(B, H, n_targets) the true values in data units (NaN past the end of the data)."""
    naive: Optional[torch.Tensor] = None
    """(B, H, n_targets) the seasonal-naive forecast in data units (NaN without a season of history)."""
    base: Optional[torch.Tensor] = None
    """(B, m, n_targets) the m transformed values before the origin, which undo differencing."""
    times: Optional[list[list[str]]] = None
    """The time label of every forecast step, per window."""
