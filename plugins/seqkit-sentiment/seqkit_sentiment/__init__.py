"""seqkit-sentiment: text classification (sentiment) from CSV/TSV, an order-sensitive generated
review corpus, and an embedding initialised from pretrained word vectors."""

from seqkit_sentiment.data import TextClassificationData
from seqkit_sentiment.vectors import WordVectorEmbedding

__all__ = ["TextClassificationData", "WordVectorEmbedding"]
