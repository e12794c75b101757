"""seqkit-caption: one-to-many LSTM decoding - image captioning and vector to sequence.

The decoder, attention and search are seqkit's shared ``seqkit.seq2seq`` kit."""

from seqkit_caption.data import CaptionData
from seqkit_caption.encoders import SmallImageCNN, TorchvisionImageEncoder
from seqkit_caption.heads import OneToManyHead
from seqkit_caption.spec import CaptionSpec, OneToManyBatch, OneToManySpec
from seqkit_caption.vec2seq import VectorSequenceData

__all__ = ["CaptionData", "CaptionSpec", "OneToManyBatch", "OneToManyHead", "OneToManySpec", "SmallImageCNN",
           "TorchvisionImageEncoder", "VectorSequenceData"]
