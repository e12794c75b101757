"""seqkit-forecast: time-series forecasting with LSTMs (direct or recursive), AirPassengers built in."""

from seqkit_forecast.data import ForecastData
from seqkit_forecast.head import ForecastHead
from seqkit_forecast.plot import ForecastPlot
from seqkit_forecast.spec import ForecastBatch, ForecastSpec

__all__ = ["ForecastBatch", "ForecastData", "ForecastHead", "ForecastPlot", "ForecastSpec"]
