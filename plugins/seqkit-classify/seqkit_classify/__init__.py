"""seqkit-classify: sequence-classification data for seqkit (a generated marker task, your own
TSV token files, and numeric .npz/.npy/.ts sequences). It trains with seqkit's own generic
``ManyToOneHead``."""

from seqkit_classify.data import MarkerTaskData
from seqkit_classify.sequences import SequenceArrayData

__all__ = ["MarkerTaskData", "SequenceArrayData"]
