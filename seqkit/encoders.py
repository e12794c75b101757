"""Input encoders: turn what the data provides into a (B, T, D) sequence for the LSTM stack.

The model picks one from ``spec.input_kind`` when ``model.encoder`` is not set: a token embedding
for ids, a linear projection for numeric features. Plugins register their own (a frame CNN for
video, an image CNN for captioning) through ``seqkit_register_encoders``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from seqkit.errors import SeqkitError
from seqkit.spec import Spec


class InputEncoder(nn.Module, ABC):
    """Base class of input encoders. Subclasses take ``spec`` as their first argument and set
    ``self.output_size``, the D of their (B, T, D) output."""

    output_size: int

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.spec = spec

    @abstractmethod
    def forward(self, inputs, lengths: torch.Tensor | None) -> torch.Tensor:
        """Encode a padded batch of inputs into (B, T, D) features."""


class TokenEmbedding(InputEncoder):
    """Token ids (B, T) to embeddings (B, T, D); the pad id embeds to zeros."""

    def __init__(self, spec: Spec, embedding_dim: int = 128, dropout: float = 0.0) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            embedding_dim: Size of each token's embedding vector.
            dropout: Dropout applied to the embeddings.
        """
        super().__init__(spec)
        if spec.input_kind != "tokens":
            raise SeqkitError(f"TokenEmbedding needs token inputs, but the data provides {spec.input_kind!r}")
        self.embedding = nn.Embedding(spec.input_size, embedding_dim, padding_idx=spec.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.output_size = embedding_dim

    def forward(self, inputs, lengths=None):
        return self.dropout(self.embedding(inputs))  # (B, T, D)


class FeatureProjection(InputEncoder):
    """Numeric features (B, T, F) projected to (B, T, D); ``size: null`` passes them through."""

    def __init__(self, spec: Spec, size: int | None = 64, dropout: float = 0.0) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            size: Output size of the linear projection; null feeds the raw features to the LSTM.
            dropout: Dropout applied to the projected features.
        """
        super().__init__(spec)
        if spec.input_kind != "features":
            raise SeqkitError(f"FeatureProjection needs feature inputs, but the data provides {spec.input_kind!r}")
        self.proj = nn.Linear(spec.input_size, size) if size else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.output_size = size or spec.input_size

    def forward(self, inputs, lengths=None):
        return self.dropout(self.proj(inputs.float()))  # (B, T, D)


def default_encoder(spec: Spec) -> InputEncoder:
    """The encoder used when ``model.encoder`` is not set, chosen from ``spec.input_kind``."""
    if spec.input_kind == "tokens":
        return TokenEmbedding(spec)
    if spec.input_kind == "features":
        return FeatureProjection(spec)
    raise SeqkitError(
        f"the data provides {spec.input_kind!r} inputs, which need an encoder: set model.encoder "
        "(see `seqkit plugins` for the installed encoders)"
    )
