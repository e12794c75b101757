"""DigitSumData: sequences of digits, each labelled with the sum of its digits.

Training, validation and test data are generated (seeded, no download). For prediction, give a
text file with one digit string per line (``314`` or ``3 1 4``); the records come back in the
file's order.
"""

from __future__ import annotations

import random
from typing import Optional

import torch
from torch.utils.data import Dataset

from seqkit import Batch, DataError, SeqDataModule, Spec, Vocab, pad, require_file

DIGITS = "0123456789"


class DigitSequences(Dataset):
    """(digit ids, sum) pairs; ``lengths`` lets seqkit batch similar lengths together."""

    def __init__(self, items: list[tuple[list[int], int]]) -> None:
        self.items = items
        self.lengths = [len(ids) for ids, _ in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def generate(n: int, min_len: int, max_len: int, seed: int) -> list[str]:
    """``n`` random digit strings with lengths in ``min_len..max_len``, reproducible from ``seed``."""
    rng = random.Random(seed)
    return ["".join(rng.choice(DIGITS) for _ in range(rng.randint(min_len, max_len))) for _ in range(n)]


def read_digit_file(path: str) -> list[str]:
    """Digit strings, one per non-empty line (spaces ignored); errors name the file and line."""
    require_file(path, "data.predict_file")
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

    def __init__(
        self,
        predict_file: Optional[str] = None,
        num_train: int = 4000,
        num_val: int = 400,
        num_test: int = 400,
        min_len: int = 1,
        max_len: int = 10,
        batch_size: int = 64,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        seed: int = 0,
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
            batch_size: Sequences per training batch (per process under DDP).
            eval_batch_size: Sequences per evaluation batch (default: batch_size).
            num_workers: DataLoader worker processes.
            seed: Seed of the generator and of shuffling.
        """
        super().__init__(batch_size, eval_batch_size, num_workers, seed)
        if not 1 <= min_len <= max_len:
            raise DataError(f"data.min_len and data.max_len must satisfy 1 <= min_len <= max_len (got {min_len}, {max_len})")
        self.predict_file = predict_file
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_len, self.max_len = min_len, max_len
        self.vocab: Vocab | None = None
        self.scale: int | None = None

    def build_spec(self) -> Spec:
        if self.vocab is None:  # not restored from a checkpoint
            self.vocab = Vocab.build([list(DIGITS)])
            self.scale = 9 * self.max_len
        return Spec(
            input_kind="tokens",
            input_size=len(self.vocab),
            pad_id=self.vocab.pad_id,
            num_targets=1,
            vocabs={"digits": self.vocab},
            extra={"scale": self.scale},
        )

    def _encode(self, strings: list[str]) -> DigitSequences:
        return DigitSequences([(self.vocab.encode(list(s)), sum(map(int, s))) for s in strings])

    def setup(self, stage: str) -> None:
        self.spec  # noqa: B018 - the vocabulary (or the one restored from the checkpoint)
        offset = {"train": 0, "val": 1, "test": 2}
        for split in ("train", "val", "test"):
            wanted = {"train": stage == "fit", "val": stage in ("fit", "validate"), "test": stage == "test"}[split]
            if wanted:
                strings = generate(self.sizes[split], self.min_len, self.max_len, self.seed * 1000 + offset[split])
                setattr(self, f"{split}_set", self._encode(strings))
        if stage == "predict":
            if self.predict_file is not None:
                strings = read_digit_file(self.predict_file)
            else:
                strings = generate(self.sizes["test"], self.min_len, self.max_len, self.seed * 1000 + offset["test"])
            self.predict_set = self._encode(strings)

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _ in examples], value=self.vocab.pad_id, dtype=torch.long)  # (B, T)
        targets = torch.tensor([total for _, total in examples], dtype=torch.float)  # (B,)
        return Batch(inputs=inputs, lengths=lengths, targets=targets)

    def state_dict(self) -> dict:
        return {} if self.vocab is None else {"vocab": self.vocab.state_dict(), "scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.vocab = Vocab.from_state(state["vocab"])
            self.scale = int(state["scale"])
