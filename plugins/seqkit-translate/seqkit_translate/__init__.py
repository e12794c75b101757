"""seqkit-translate: an LSTM encoder-decoder head with attention and a parallel-text data module.

The decoder, attention and search are seqkit's shared ``seqkit.seq2seq`` kit."""

from seqkit_translate.data import ParallelTextData
from seqkit_translate.heads import Seq2SeqHead
from seqkit_translate.spec import TranslationBatch, TranslationSpec

__all__ = ["ParallelTextData", "Seq2SeqHead", "TranslationBatch", "TranslationSpec"]
