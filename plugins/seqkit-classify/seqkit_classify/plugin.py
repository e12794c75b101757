"""Hook implementations: how seqkit finds this plugin's classes (entry point ``classify``)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_classify.heads import ManyToOneHead

    register(ManyToOneHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_classify.data import MarkerTaskData
    from seqkit_classify.sequences import SequenceArrayData

    register(MarkerTaskData)
    register(SequenceArrayData)
