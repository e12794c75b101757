"""seqkit-caption: one-to-many LSTM decoding - image captioning and vector to sequence."""

from seqkit_caption.data import CaptionData
from seqkit_caption.encoders import SmallImageCNN, TorchvisionImageEncoder
from seqkit_caption.heads import OneToManyHead
from seqkit_caption.vec2seq import VectorSequenceData

__all__ = ["CaptionData", "OneToManyHead", "SmallImageCNN", "TorchvisionImageEncoder", "VectorSequenceData"]
