"""seqkit-classify: numeric sequence-classification data for seqkit (.npz/.npy arrays and UEA/UCR
``.ts`` files, or a generated gesture task). It trains with seqkit's own ``ManyToOneHead``."""

from seqkit_classify.sequences import SequenceArrayData

__all__ = ["SequenceArrayData"]
