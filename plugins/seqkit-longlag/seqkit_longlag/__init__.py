"""seqkit-longlag: the long-time-lag tasks of Hochreiter & Schmidhuber (1997), generated and
seeded, with the paper's success criteria as metrics."""

from seqkit_longlag.data import AddingProblemData, CopyMemoryData, EmbeddedReberData, TemporalOrderData
from seqkit_longlag.heads import LongLagEndHead, LongLagStepHead
from seqkit_longlag.spec import LongLagSpec

__all__ = [
    "AddingProblemData",
    "CopyMemoryData",
    "EmbeddedReberData",
    "LongLagEndHead",
    "LongLagSpec",
    "LongLagStepHead",
    "TemporalOrderData",
]
