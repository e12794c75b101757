"""Hook implementations: how seqkit finds this plugin's classes (entry point ``longlag``)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_longlag.heads import LongLagEndHead, LongLagStepHead

    register(LongLagEndHead)
    register(LongLagStepHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_longlag.data import AddingProblemData, CopyMemoryData, EmbeddedReberData, TemporalOrderData

    register(AddingProblemData)
    register(CopyMemoryData)
    register(EmbeddedReberData)
    register(TemporalOrderData)
