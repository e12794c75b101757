"""DigitSumData: sequences of digits, each labelled with the sum of its digits.

Training, validation and test data are generated (seeded, no download). For prediction, give a
text file with one digit string per line (``314`` or ``3 1 4``); the records come back in the
file's order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

import torch

from seqkit import Batch, DataError, Examples, SeqDataModule, Spec, Vocab, pad

DIGITS = "0123456789"
SEEDS = {"train": 0, "val": 1, "test": 2}


@dataclass
class DigitSumSpec(Spec):
    """A :class:`seqkit.Spec` with the scale of the sums (what ``DigitSumHead`` reads)."""

    scale: float = 1.0
    """The head predicts sum / scale (9 x the longest training sequence), so targets lie in [0, 1]."""


def generate(n: int, min_len: int, max_len: int, seed: int) -> list[str]:
    """``n`` random digit strings with lengths in ``min_len..max_len``, reproducible from ``seed``."""
    rng = random.Random(seed)
    return ["".join(rng.choice(DIGITS) for _ in range(rng.randint(min_len, max_len))) for _ in range(n)]


def read_digit_file(path: str) -> list[str]:
    """Digit strings, one per non-empty line (spaces ignored); errors name the file and line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            digits = "".join(line.split())
            if not digits:
                continue
            bad = sorted(set(digits) - set(DIGITS))
            if bad:
                raise DataError(f"{path}:{lineno}: only the digits 0-9 are allowed, found {''.join(bad)!r}")
            rows.append(digits)
    if not rows:
        raise DataError(f"{path}: no digit strings")
    return rows


class DigitSumData(SeqDataModule):
    """Digit strings and their digit sums: generated for training, from a file for prediction."""

    spec_type = DigitSumSpec
    fitted = {"vocab": Vocab, "scale": float}  # set by fit_state(), saved in checkpoints

    def __init__(
        self,
        predict_file: Optional[str] = None,
        num_train: int = 4000,
        num_val: int = 400,
        num_test: int = 400,
        min_len: int = 1,
        max_len: int = 10,
        **kwargs,
    ) -> None:
        """
        Args:
            predict_file: Text file with one digit string per line, for ``seqkit predict``
                (default: the generated test set).
            num_train: Generated training sequences.
            num_val: Generated validation sequences.
            num_test: Generated test sequences.
            min_len: Fewest digits in a generated sequence.
            max_len: Most digits in a generated sequence; sums are scaled by 9 * max_len.
        """
        super().__init__(**kwargs)  # loader (batch sizes, workers) and seed, as in every data module
        if not 1 <= min_len <= max_len:
            raise DataError(f"data.init_args: need 1 <= min_len <= max_len (got {min_len}, {max_len})")
        self.predict_file = predict_file
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_len, self.max_len = min_len, max_len

    def fit_state(self) -> None:
        self.vocab = Vocab.build([list(DIGITS)])
        self.scale = 9.0 * self.max_len  # the largest sum in training: a checkpoint keeps it

    def build_spec(self) -> DigitSumSpec:
        return DigitSumSpec(input_kind="tokens", input_size=len(self.vocab), pad_id=self.vocab.pad_id,
                            num_targets=1, vocabs={"digits": self.vocab}, scale=self.scale)

    def dataset(self, split: str) -> Examples:
        if split == "predict" and self.predict_file is not None:
            strings = read_digit_file(self.split_file("predict_file"))
        else:
            split = "test" if split == "predict" else split
            strings = generate(self.sizes[split], self.min_len, self.max_len, self.seed * 1000 + SEEDS[split])
        return Examples([(self.vocab.encode(s), sum(map(int, s)), s) for s in strings])

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _, _ in examples], value=self.vocab.pad_id, dtype=torch.long)  # (B, T)
        targets = torch.tensor([total for _, total, _ in examples], dtype=torch.float)  # (B,)
        return Batch(inputs=inputs, lengths=lengths, targets=targets, names=[s for _, _, s in examples])
