"""Hook implementations: how seqkit finds this plugin's classes (entry point ``sentiment``).

The head is seqkit's own generic ManyToOneHead (classification with accuracy and macro-F1)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_sentiment.data import TextClassificationData, TextLMData

    register(TextClassificationData)
    register(TextLMData)


@hookimpl
def seqkit_register_encoders(register):
    from seqkit_sentiment.vectors import WordVectorEmbedding

    register(WordVectorEmbedding)
