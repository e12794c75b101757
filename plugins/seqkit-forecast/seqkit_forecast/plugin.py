"""Hook implementations: how seqkit finds this plugin's classes (entry point ``forecast``)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_forecast.head import ForecastHead

    register(ForecastHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_forecast.data import ForecastData

    register(ForecastData)
