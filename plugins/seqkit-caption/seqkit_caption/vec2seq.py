"""Vector to sequence: a data module whose input is one vector and whose target is a token sequence.

The same one-to-many decoder as captioning (``OneToManyHead``), fed by the core
``FeatureProjection`` encoder instead of an image CNN: the vector is a one-step "sequence"
(B, 1, F) and its projection starts the decoder.

By default the data is generated (seeded, no download): the vector is the parameters
``(start, step, count)`` of an arithmetic progression and the target is the progression written
as number tokens, e.g. ``3 4 5 -> "3 7 11 15 19"``. Test triples never occur in training, so the
test split measures whether the decoder learned to count and add rather than to recall.

With ``train_file`` it reads your own: TSV lines ``numbers<TAB>tokens``, the vector's numbers
separated by spaces or commas and the target tokens by spaces. Features are standardised with the
training mean and deviation (the fitted state, saved in checkpoints with the vocabulary).
"""

from __future__ import annotations

import os
import random
import re
from typing import Optional

import torch

from seqkit import DataError, Examples, SeqDataModule, Vocab, pad
from seqkit_caption.spec import OneToManyBatch, OneToManySpec

_SPLIT = re.compile(r"[,\s]+")


def generate_progressions(seed: int, max_start: int = 20, max_step: int = 5, min_count: int = 3, max_count: int = 8,
                          test_share: float = 0.15) -> dict[str, list[tuple[list[float], list[str]]]]:
    """Every (start, step, count) triple once, split by triple into train / val / test."""
    triples = [(a, d, n) for a in range(max_start) for d in range(1, max_step + 1) for n in range(min_count, max_count + 1)]
    random.Random(seed).shuffle(triples)
    k = int(round(test_share * len(triples)))
    parts = {"test": triples[:k], "val": triples[k : 2 * k], "train": triples[2 * k :]}
    return {
        split: [([float(a), float(d), float(n)], [str(a + i * d) for i in range(n)]) for a, d, n in part]
        for split, part in parts.items()
    }


def read_vector_file(path: str, with_targets: bool = True) -> list[tuple[list[float], list[str]]]:
    """(vector, tokens) rows of a ``numbers<TAB>tokens`` file (or vectors alone for predict)."""
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    rows, width = [], None
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            left, _, right = line.partition("\t")
            if with_targets and not _:
                raise DataError(f"{path}:{lineno}: expected 'numbers<TAB>tokens', found no tab")
            try:
                vec = [float(v) for v in _SPLIT.split(left.strip()) if v]
            except ValueError:
                raise DataError(f"{path}:{lineno}: the vector must be numbers separated by spaces or commas, got {left!r}") from None
            if width is not None and len(vec) != width:
                raise DataError(f"{path}:{lineno}: vector has {len(vec)} numbers, earlier lines have {width}")
            width = len(vec)
            tokens = right.split()
            if with_targets and not tokens:
                raise DataError(f"{path}:{lineno}: empty target sequence")
            rows.append((vec, tokens))
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


class VectorSequenceData(SeqDataModule):
    """One vector in, one token sequence out: generated arithmetic progressions, or your TSV files."""

    spec_type = OneToManySpec
    fitted = {"vocab": Vocab, "mean": list, "std": list, "max_target_len": int}

    def __init__(
        self,
        train_file: Optional[str] = None,
        val_file: Optional[str] = None,
        test_file: Optional[str] = None,
        predict_file: Optional[str] = None,
        standardize: bool = True,
        max_start: int = 20,
        max_step: int = 5,
        max_count: int = 8,
        **kwargs,
    ) -> None:
        """
        Args:
            train_file: TSV of ``numbers<TAB>tokens`` lines; null generates arithmetic
                progressions instead. val_file and test_file are then required too.
            val_file: Validation TSV (same format).
            test_file: Test TSV (same format).
            predict_file: Vectors to decode, one per line (numbers only); null decodes the test split.
            standardize: Subtract the training mean and divide by the training deviation of each feature.
            max_start: Generated progressions start at 0 .. max_start-1.
            max_step: Generated steps are 1 .. max_step.
            max_count: Generated progressions have 3 .. max_count numbers.
        """
        super().__init__(**kwargs)
        if train_file is not None and (val_file is None or test_file is None):
            raise DataError("data.init_args.train_file needs data.init_args.val_file and test_file too")
        if max_count < 3 or max_step < 1 or max_start < 1:
            raise DataError("data.init_args.max_start and max_step must be >= 1 and max_count >= 3")
        # files are checked when they are read: a module restored from a checkpoint never reads them
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.predict_file, self.standardize = predict_file, standardize
        self.gen_args = {"max_start": max_start, "max_step": max_step, "max_count": max_count}
        self._generated: dict | None = None

    def _raw(self, split: str) -> list[tuple[list[float], list[str]]]:
        if self.files["train"] is None:
            if self._generated is None:
                self._generated = generate_progressions(self.seed, **self.gen_args)
            return self._generated[split]
        return read_vector_file(self.split_file(f"{split}_file", self.files[split]))

    def fit_state(self) -> None:
        train = self._raw("train")
        self.vocab = Vocab.build(tokens for _, tokens in train)
        x = torch.tensor([vec for vec, _ in train])  # (N, F)
        self.mean = x.mean(0).tolist() if self.standardize else [0.0] * x.shape[1]
        self.std = x.std(0).clamp(min=1e-6).tolist() if self.standardize and len(x) > 1 else [1.0] * x.shape[1]
        self.max_target_len = max(len(t) for _, t in train) + 1  # + <eos>

    def build_spec(self) -> OneToManySpec:
        return OneToManySpec(
            input_kind="features",
            input_size=len(self.mean),
            pad_id=self.vocab.pad_id,
            vocabs={"target": self.vocab},
            max_target_len=int(self.max_target_len),
            source_field="input",
            target_field="output",
        )

    def _encode(self, rows, with_targets: bool = True) -> Examples:
        F = len(self.mean)
        items = []
        for vec, tokens in rows:
            if len(vec) != F:
                raise DataError(f"a vector has {len(vec)} numbers; the model was trained on {F}")
            x = [(v - m) / s for v, m, s in zip(vec, self.mean, self.std)]
            name = " ".join(f"{v:g}" for v in vec)
            ids = self.vocab.encode(tokens, add_bos=True, add_eos=True) if with_targets else None
            items.append((x, ids, [" ".join(tokens)] if with_targets else [], name))
        return Examples(items, lengths=[len(ids) if ids else 1 for _, ids, _, _ in items])

    def dataset(self, split: str) -> Examples:
        if split != "predict":
            return self._encode(self._raw(split))
        if self.predict_file is None:
            return self._encode(self._raw("test"))
        return self._encode(read_vector_file(self.split_file("predict_file"), with_targets=False), with_targets=False)

    def collate(self, examples: list) -> OneToManyBatch:
        inputs = torch.tensor([x for x, _, _, _ in examples], dtype=torch.float32).unsqueeze(1)  # (B, 1, F)
        targets = target_lengths = None
        if all(ids is not None for _, ids, _, _ in examples):
            targets, target_lengths = pad([ids for _, ids, _, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        return OneToManyBatch(
            inputs=inputs,
            lengths=torch.ones(len(examples), dtype=torch.long),
            targets=targets,
            target_lengths=target_lengths,
            names=[n for _, _, _, n in examples],
            references=[r for _, _, r, _ in examples],
        )
