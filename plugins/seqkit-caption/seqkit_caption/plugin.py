"""Hook implementations: how seqkit finds this plugin's classes (entry point ``caption``)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_caption.heads import OneToManyHead

    register(OneToManyHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_caption.data import CaptionData
    from seqkit_caption.vec2seq import VectorSequenceData

    register(CaptionData)
    register(VectorSequenceData)


@hookimpl
def seqkit_register_encoders(register):
    from seqkit_caption.encoders import SmallImageCNN, TorchvisionImageEncoder

    register(SmallImageCNN)
    register(TorchvisionImageEncoder)
