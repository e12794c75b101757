"""seqkit: LSTM sequence models on PyTorch Lightning.

This module's ``__all__`` is the public API for plugin authors; everything else may change.
"""

__version__ = "0.1.0"

from seqkit.callbacks import PredictionWriter, atomic_write
from seqkit.data import LengthBucketSampler, SeqDataModule, pad, require_file
from seqkit.decoding import Hypotheses, beam_search, greedy_search
from seqkit.encoders import FeatureProjection, InputEncoder, TokenEmbedding
from seqkit.errors import DataError, SeqkitError
from seqkit.head import Head
from seqkit.hookspecs import hookimpl
from seqkit.lstm import LSTMStack, RecurrentStack, final_hidden
from seqkit.model import Encoded, SequenceModel
from seqkit.spec import Batch, Spec, length_mask
from seqkit.srn import SimpleRNNStack
from seqkit.tbptt import StateCarry, StreamChunks
from seqkit.text import Tokenizer, Vocab

__all__ = [
    "Batch",
    "DataError",
    "Encoded",
    "FeatureProjection",
    "Head",
    "Hypotheses",
    "InputEncoder",
    "LSTMStack",
    "LengthBucketSampler",
    "PredictionWriter",
    "RecurrentStack",
    "SeqDataModule",
    "SeqkitError",
    "SequenceModel",
    "SimpleRNNStack",
    "Spec",
    "StateCarry",
    "StreamChunks",
    "TokenEmbedding",
    "Tokenizer",
    "Vocab",
    "atomic_write",
    "beam_search",
    "final_hidden",
    "greedy_search",
    "hookimpl",
    "length_mask",
    "pad",
    "require_file",
]


def api_bases() -> dict:
    """The base classes plugins register against, by name (used by the plugin loader)."""
    return {"Head": Head, "SeqDataModule": SeqDataModule, "InputEncoder": InputEncoder}
