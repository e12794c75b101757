"""Hook implementations: how seqkit finds this plugin's classes (entry point ``classify``).

The heads it trains with (``ManyToOneHead``) are seqkit's own generic heads."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_classify.data import MarkerTaskData
    from seqkit_classify.sequences import SequenceArrayData

    register(MarkerTaskData)
    register(SequenceArrayData)
