"""``WordVectorEmbedding``: a token embedding initialised from pretrained word vectors.

Reads a local text file in the word2vec text format (a first line "<count> <dim>", then
"word v1 ... vD" per line) or the GloVe format (the same lines without the first one; Pennington
et al. 2014). Only the vectors of words in the training vocabulary are kept, so a large file costs
one pass and little memory. Words the file lacks start from random vectors of the same scale; the
pad id embeds to zeros. The embedding is then fine-tuned with the model unless ``freeze``.

The table is a parameter, so it is saved in every checkpoint with the fine-tuned values. Give
``dim`` (the vectors' dimension) and the file is needed only to train: a model built where the
file is missing (``seqkit predict`` on another machine, the file deleted) starts from a random
table of that size, which the checkpoint's weights then replace. Without ``dim`` the dimension is
read from the file, so the file must exist wherever the model is built.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from seqkit import DataError, InputEncoder, SeqkitError, Spec, Vocab, require_file


def load_word_vectors(path: str, itos: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, D) vectors for the words ``itos`` and a (V,) mask of those the file has.

    A word missing verbatim is looked up lowercased. Errors name the file and line."""
    require_file(path, "word-vector file")
    index = {w: i for i, w in enumerate(itos)}
    lower: dict[str, list[int]] = {}
    for i, w in enumerate(itos):
        lower.setdefault(w.lower(), []).append(i)
    rows: dict[int, list[float]] = {}
    exact: set[int] = set()
    dim = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header: "<count> <dim>"
                continue
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{lineno}: expected a word and {dim} numbers, found {len(parts) - 1} numbers")
            word = parts[0]
            targets = [index[word]] if word in index else [i for i in lower.get(word.lower(), []) if i not in exact]
            if not targets:
                continue
            try:
                vec = [float(x) for x in parts[1:]]
            except ValueError:
                raise DataError(f"{path}:{lineno}: the vector of {word!r} has a value that is not a number") from None
            for i in targets:
                if i in exact and word not in index:
                    continue
                rows[i] = vec
            if word in index:
                exact.add(index[word])
    if dim is None:
        raise DataError(f"{path}: no word vectors found")
    vectors = torch.zeros(len(itos), dim)
    found = torch.zeros(len(itos), dtype=torch.bool)
    for i, vec in rows.items():
        vectors[i] = torch.tensor(vec)
        found[i] = True
    return vectors, found


class WordVectorEmbedding(InputEncoder):
    """Token ids (B, T) to (B, T, D) embeddings initialised from a word2vec/GloVe text file."""

    def __init__(self, spec: Spec, vectors: str, dim: Optional[int] = None, freeze: bool = False, dropout: float = 0.0,
                 vocab: str = "tokens") -> None:
        """
        Args:
            spec: Sizes and vocabularies from the data module (linked automatically).
            vectors: Local word-vector file in word2vec or GloVe text format.
            dim: The vectors' dimension D. Set it and predicting from a checkpoint needs no vector
                file (the trained table is in the checkpoint); null reads D from the file, which
                must then exist whenever the model is built.
            freeze: Keep the embedding fixed during training.
            dropout: Dropout applied to the embeddings.
            vocab: Which of the data's vocabularies holds the input words ("tokens" for
                TextClassificationData).
        """
        super().__init__(spec)
        if spec.input_kind != "tokens":
            raise SeqkitError(f"WordVectorEmbedding needs token inputs, but the data provides {spec.input_kind!r}")
        words = spec.vocabs.get(vocab)
        if not isinstance(words, Vocab):
            raise SeqkitError(f"model.encoder.init_args.vocab: the data has no vocabulary {vocab!r} "
                              f"(it has: {', '.join(spec.vocabs) or 'none'})")
        if dim is not None and dim < 1:
            raise SeqkitError(f"model.encoder.init_args.dim must be >= 1 or null, got {dim}")
        if dim is None and not os.path.exists(vectors):
            raise DataError(f"word-vector file not found: {vectors} (set model.encoder.init_args.dim, the vectors' "
                            "dimension, to build the model without it, e.g. to predict from a checkpoint)")
        if os.path.exists(vectors):
            table, found = load_word_vectors(vectors, words.itos)
            if dim is not None and table.shape[1] != dim:
                raise DataError(f"{vectors}: the vectors have {table.shape[1]} dimensions, but "
                                f"model.encoder.init_args.dim is {dim}")
        else:  # no file: the trained table comes from the checkpoint being loaded
            table, found = torch.zeros(len(words.itos), dim), torch.zeros(len(words.itos), dtype=torch.bool)
        V, D = table.shape
        std = float(table[found].std()) if int(found.sum()) > 1 else 1.0 / math.sqrt(D)
        g = torch.Generator().manual_seed(0)  # the same initial table in every DDP process
        table[~found] = torch.randn(int((~found).sum()), D, generator=g) * std
        table[spec.pad_id] = 0.0
        self.embedding = nn.Embedding.from_pretrained(table, freeze=freeze, padding_idx=spec.pad_id)
        self.dropout = nn.Dropout(dropout)
        self.output_size = D
        self.coverage = (int(found.sum()), V)
        if os.path.exists(vectors):
            rank_zero_info(f"seqkit: {vectors}: pretrained vectors for {int(found.sum())} of {V} vocabulary entries (D={D})")
        else:
            rank_zero_info(f"seqkit: {vectors} not found: a random {V} x {D} table, to be replaced by a checkpoint's weights")

    def forward(self, inputs, lengths=None):
        return self.dropout(self.embedding(inputs))  # (B, T, D)
