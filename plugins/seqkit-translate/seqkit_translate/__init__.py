"""seqkit-translate: an LSTM encoder-decoder head with attention and a parallel-text data module."""

from seqkit_translate.data import ParallelTextData
from seqkit_translate.heads import Seq2SeqHead

__all__ = ["ParallelTextData", "Seq2SeqHead"]
