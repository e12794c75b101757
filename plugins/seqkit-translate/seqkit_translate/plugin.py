"""Hook implementations: how seqkit finds this plugin's classes (entry point ``translate``)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_translate.heads import Seq2SeqHead

    register(Seq2SeqHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_translate.data import ParallelTextData

    register(ParallelTextData)
