"""seqkit's own plugin: registers the core input encoders through the same hooks third parties use."""

from seqkit.encoders import FeatureProjection, TokenEmbedding
from seqkit.hookspecs import hookimpl


@hookimpl
def seqkit_register_encoders(register):
    register(TokenEmbedding)
    register(FeatureProjection)
