"""seqkit's own plugin: registers the core input encoders, the generic heads and the built-in
marker-task data module through the same hooks third parties use."""

from seqkit.encoders import FeatureProjection, TokenEmbedding
from seqkit.heads import ManyToOneHead, PerStepHead
from seqkit.hookspecs import hookimpl
from seqkit.marker import MarkerTaskData


@hookimpl
def seqkit_register_encoders(register):
    register(TokenEmbedding)
    register(FeatureProjection)


@hookimpl
def seqkit_register_heads(register):
    register(ManyToOneHead)
    register(PerStepHead)


@hookimpl
def seqkit_register_datamodules(register):
    register(MarkerTaskData)
