"""seqkit: LSTM sequence models on PyTorch Lightning.

This module's ``__all__`` is the public API for plugin authors; everything else may change.
"""

from seqkit._version import __version__

from seqkit.augment import Augment
from seqkit.callbacks import PredictionWriter, SaveOnStop, TimeBudget, atomic_write
from seqkit.data import Examples, LengthBucketSampler, Loader, OnBad, SeqDataModule, pad, require_file
from seqkit.seq2seq.search import Hypotheses, beam_search, greedy_search
from seqkit.encoders import FeatureProjection, InputEncoder, TokenEmbedding
from seqkit.errors import DataError, SeqkitError
from seqkit.head import EncodeFn, Head, records_for
from seqkit.heads import ManyToOneHead, PerStepHead
from seqkit.hookspecs import hookimpl
from seqkit.lstm import LSTMStack, RecurrentStack, final_hidden
from seqkit.model import SequenceModel
from seqkit.schedules import WarmupDecay
from seqkit.spec import Batch, Encoded, Spec, State, last_step, length_mask
from seqkit.srn import SimpleRNNStack
from seqkit.tables import read_table
from seqkit.tbptt import StreamChunks
from seqkit.text import Tokenizer, Vocab

__all__ = [
    "Augment",
    "Batch",
    "DataError",
    "EncodeFn",
    "Encoded",
    "Examples",
    "FeatureProjection",
    "Head",
    "Hypotheses",
    "InputEncoder",
    "LSTMStack",
    "LengthBucketSampler",
    "Loader",
    "ManyToOneHead",
    "OnBad",
    "PerStepHead",
    "PredictionWriter",
    "RecurrentStack",
    "SeqDataModule",
    "SaveOnStop",
    "SeqkitError",
    "SequenceModel",
    "SimpleRNNStack",
    "Spec",
    "State",
    "StreamChunks",
    "TokenEmbedding",
    "TimeBudget",
    "Tokenizer",
    "Vocab",
    "WarmupDecay",
    "atomic_write",
    "beam_search",
    "final_hidden",
    "greedy_search",
    "hookimpl",
    "last_step",
    "length_mask",
    "pad",
    "read_table",
    "records_for",
    "require_file",
]
