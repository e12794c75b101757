"""seqkit-sentiment: text classification (sentiment) from CSV/TSV, an order-sensitive generated
review corpus, language-model data for pretraining an encoder on the task's own text, and an embedding initialised from pretrained word vectors."""

from seqkit_sentiment.data import TextClassificationData, TextLMData
from seqkit_sentiment.vectors import WordVectorEmbedding

__all__ = ["TextClassificationData", "TextLMData", "WordVectorEmbedding"]
