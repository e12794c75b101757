"""What the translation data gives the translation head: ``TranslationSpec`` (the data's facts)
and ``TranslationBatch`` (what a batch carries besides the padded ids)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from seqkit import Batch, Spec, Tokenizer


@dataclass
class TranslationSpec(Spec):
    """A spec for translation: the source and target vocabularies are in ``vocabs`` ("source",
    "target"); the tokenizers turn text into those tokens and back."""

    source_tokenizer: Optional[Tokenizer] = None
    """Splits source sentences into tokens (fitted on the training split for BPE)."""
    target_tokenizer: Optional[Tokenizer] = None
    """Joins the decoder's output tokens back into text (None: with spaces)."""
    max_target_length: int = 100
    """Longest target sentence in tokens (without <eos>): the decoder never writes more."""


@dataclass
class TranslationBatch(Batch):
    """A batch of sentence pairs: ``inputs`` (B, S) source ids, ``targets`` (B, T) target ids
    ending in <eos> (None when predicting), ``names`` the raw source sentences."""

    source_tokens: list[list[str]] = field(default_factory=list)
    """The source tokens of each sentence (the attention picture's x axis)."""
    references: list[Optional[str]] = field(default_factory=list)
    """Each reference translation as text, after the same tokenise/detokenise round trip as the
    model's output (None when predicting)."""
