"""``MarkerTaskData``: the built-in sequence-classification data module (token sequences with one
label each), so that ``pip install seqkit`` alone trains a many-to-one config.

By default the data is generated (seeded, no download): each sequence is a run of random symbols
with one marker ``#`` somewhere in it, and its class is the symbol right after the marker. A
bag-of-symbols model cannot solve it (it does not know which symbol follows the marker), so the
LSTM has to carry that symbol in its state to the end of the sequence.

With ``data_dir`` it reads your own files instead: ``train.tsv``, ``val.tsv`` and ``test.tsv``,
one example per line, ``label<TAB>space-separated tokens``.
"""

from __future__ import annotations

import os
import random
from typing import Optional

import torch

from seqkit.data import Examples, SeqDataModule, pad, require_file
from seqkit.errors import DataError
from seqkit.spec import Batch, Spec
from seqkit.text import Vocab

MARKER = "#"


def generate_marker_task(n: int, num_symbols: int, min_len: int, max_len: int, seed: int) -> list[tuple[str, list[str]]]:
    """``n`` (label, tokens) pairs of the marker task, reproducible from ``seed``."""
    rng = random.Random(seed)
    symbols = [chr(ord("a") + k) for k in range(num_symbols)]
    out = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        tokens = [rng.choice(symbols) for _ in range(length)]
        pos = rng.randrange(0, length - 1)
        tokens[pos] = MARKER
        out.append((tokens[pos + 1], tokens))
    return out


def read_tsv(path: str) -> list[tuple[str, list[str]]]:
    """(label, tokens) pairs from ``label<TAB>tokens`` lines; errors name the file and line."""
    require_file(path)
    rows = []
    with open(path, "rb") as fh:  # decoded line by line, so a bad byte names its line
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
            if not line.strip():
                continue
            if "\t" not in line:
                raise DataError(f"{path}:{lineno}: expected 'label<TAB>tokens', found no tab")
            label, text = line.split("\t", 1)
            tokens = text.split()
            if not tokens:
                raise DataError(f"{path}:{lineno}: empty sequence")
            rows.append((label.strip(), tokens))
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


class MarkerTaskData(SeqDataModule):
    """Token sequences with one label each: the generated marker task, or your own TSV files."""

    fitted = {"vocab": Vocab, "labels": list}

    def __init__(
        self,
        data_dir: Optional[str] = None,
        predict_file: Optional[str] = None,
        num_train: int = 4000,
        num_val: int = 500,
        num_test: int = 500,
        num_symbols: int = 8,
        min_len: int = 5,
        max_len: int = 40,
        **kwargs,
    ) -> None:
        """
        Args:
            data_dir: Folder with train.tsv, val.tsv and test.tsv (label<TAB>tokens); null
                generates the marker task instead.
            predict_file: Text file of space-separated tokens, one sequence per line, for predict.
            num_train: Generated training sequences.
            num_val: Generated validation sequences.
            num_test: Generated test sequences.
            num_symbols: Size of the generated alphabet (and number of classes).
            min_len: Shortest generated sequence.
            max_len: Longest generated sequence.
        """
        super().__init__(**kwargs)
        if min_len < 2 or max_len < min_len:
            raise DataError(f"data.min_len must be >= 2 and <= data.max_len (got {min_len} and {max_len})")
        self.data_dir, self.predict_file = data_dir, predict_file
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.num_symbols, self.min_len, self.max_len = num_symbols, min_len, max_len

    def _raw(self, split: str) -> list[tuple[str, list[str]]]:
        if self.data_dir is not None:
            if not os.path.isdir(self.data_dir):
                raise DataError(f"data.init_args.data_dir: folder not found: {self.data_dir}")
            return read_tsv(os.path.join(self.data_dir, f"{split}.tsv"))
        offset = {"train": 0, "val": 1, "test": 2}[split]
        return generate_marker_task(self.sizes[split], self.num_symbols, self.min_len, self.max_len, self.seed * 1000 + offset)

    def fit_state(self) -> None:
        train = self._raw("train")
        self.vocab = Vocab.build(tokens for _, tokens in train)
        self.labels = sorted({label for label, _ in train})
        if len(self.labels) < 2:
            where = os.path.join(self.data_dir, "train.tsv") if self.data_dir is not None else "the generated data"
            raise DataError(f"{where}: every example has the label {self.labels[0]!r}; a classifier needs at least two labels")

    def build_spec(self) -> Spec:
        return Spec(
            input_kind="tokens",
            input_size=len(self.vocab),
            pad_id=self.vocab.pad_id,
            num_classes=len(self.labels),
            labels=list(self.labels),
            vocabs={"tokens": self.vocab},
        )

    def _encode(self, rows: list[tuple[str, list[str]]], split: str) -> Examples:
        index = {label: i for i, label in enumerate(self.labels)}
        items = []
        for n, (label, tokens) in enumerate(rows):
            if label not in index:
                raise DataError(f"{split} example {n + 1}: label {label!r} was not seen in training (known: {', '.join(self.labels)})")
            items.append((self.vocab.encode(tokens), index[label]))
        return Examples(items)

    def dataset(self, split: str) -> Examples:
        if split != "predict":
            return self._encode(self._raw(split), split)
        if self.predict_file is None:  # no file: predict the test split
            return Examples([(ids, -1) for ids, _ in self._encode(self._raw("test"), "test").items])
        with open(self.split_file("predict_file"), encoding="utf-8") as fh:
            lines = [line.split() for line in fh if line.strip()]
        return Examples([(self.vocab.encode(toks), -1) for toks in lines])

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        targets = torch.tensor([y for _, y in examples], dtype=torch.long)
        return Batch(inputs=inputs, lengths=lengths, targets=targets)
