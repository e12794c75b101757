"""Hook implementations: how seqkit finds this plugin's classes (entry point ``classify``).

It trains with seqkit's own generic ``ManyToOneHead``; the generated marker task
(``MarkerTaskData``) is built into seqkit itself."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_classify.sequences import SequenceArrayData

    register(SequenceArrayData)
