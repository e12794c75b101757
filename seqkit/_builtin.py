"""seqkit's own plugin: registers the core input encoders and the generic heads through the same
hooks third parties use."""

from seqkit.encoders import FeatureProjection, TokenEmbedding
from seqkit.heads import ManyToOneHead, PerStepHead
from seqkit.hookspecs import hookimpl


@hookimpl
def seqkit_register_encoders(register):
    register(TokenEmbedding)
    register(FeatureProjection)


@hookimpl
def seqkit_register_heads(register):
    register(ManyToOneHead)
    register(PerStepHead)
