"""seqkit-classify: many-to-one heads and a generated sequence-classification data module."""

from seqkit_classify.data import MarkerTaskData
from seqkit_classify.heads import ManyToOneHead

__all__ = ["ManyToOneHead", "MarkerTaskData"]
