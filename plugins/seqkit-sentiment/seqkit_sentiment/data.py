"""Text classification data (sentiment and the like): CSV/TSV files of text and label.

Texts are split by seqkit's shared :class:`seqkit.Tokenizer` (word, char or subword BPE; the same
implementation translation uses) and mapped to ids by a :class:`seqkit.Vocab` built from the
training texts only. Without files, a generated review corpus whose labels need word order is
used (see :mod:`seqkit_sentiment.corpus`).

Policies: a row with a different number of fields than the header (or the first row) is an error
naming the file and line; an empty text or label is an error (``missing: skip`` drops such rows
instead); a validation or test label that never occurs in training is an error naming the file,
line and the known labels.
"""

from __future__ import annotations

import csv
import os
import random
from typing import Literal, Optional, Union

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import Dataset

from seqkit import Batch, DataError, SeqDataModule, Spec, Tokenizer, Vocab, pad, require_file

from seqkit_sentiment.corpus import generate_reviews

Column = Union[str, int]


class _Texts(Dataset):
    def __init__(self, items: list[tuple[list[int], int, str]]) -> None:
        self.items = items
        self.lengths = [len(ids) for ids, _, _ in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def _column(col: Column, header: list[str] | None, path: str, key: str) -> int:
    if isinstance(col, int) or (isinstance(col, str) and col.isdigit() and (header is None or col not in header)):
        return int(col)
    if header is None:
        raise DataError(f"data.{key}: {col!r} is a column name, but data.header is false; give a 0-based index")
    if col not in header:
        raise DataError(f"data.{key}: no column {col!r} in {path}; columns: {', '.join(header)}")
    return header.index(col)


def read_table(
    path: str,
    text_column: Column,
    label_column: Optional[Column],
    header: Optional[bool] = None,
    delimiter: Optional[str] = None,
    missing: str = "error",
) -> list[tuple[str, Optional[str], int]]:
    """(text, label, line) rows of a CSV/TSV file; ``label_column=None`` reads texts only.

    ``header=None`` means: the first row is a header when a column is given by name.
    """
    require_file(path)
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    if header is None:
        header = any(isinstance(c, str) and not c.isdigit() for c in (text_column, label_column) if c is not None)
    rows: list[tuple[str, Optional[str], int]] = []
    skipped = 0
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        names = None
        width = None
        try:
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header and names is None:
                    names, width = [h.strip() for h in row], len(row)
                    t_idx = _column(text_column, names, path, "text_column")
                    l_idx = None if label_column is None else _column(label_column, names, path, "label_column")
                    continue
                if width is None:
                    width = len(row)
                    t_idx = _column(text_column, None, path, "text_column")
                    l_idx = None if label_column is None else _column(label_column, None, path, "label_column")
                    for key, i in (("text_column", t_idx), ("label_column", l_idx)):
                        if i is not None and i >= width:
                            raise DataError(f"data.{key}: column {i} is out of range; {path} has {width} columns")
                line = reader.line_num
                if len(row) != width:
                    raise DataError(f"{path}:{line}: expected {width} fields, found {len(row)} "
                                    f"(quote texts that contain the delimiter {delimiter!r})")
                text = row[t_idx].strip()
                label = None if l_idx is None else row[l_idx].strip()
                if not text or label == "":
                    if missing == "skip":
                        skipped += 1
                        continue
                    what = "text" if not text else "label"
                    raise DataError(f"{path}:{line}: empty {what} (set data.missing: skip to drop such rows)")
                rows.append((text, label, line))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{reader.line_num + 1}: not valid UTF-8 ({exc.reason})") from exc
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc
    if skipped:
        rank_zero_warn(f"{path}: skipped {skipped} rows with an empty text or label (data.missing: skip)")
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


class TextClassificationData(SeqDataModule):
    """Texts with one label each, from CSV/TSV files or the generated order-sensitive review corpus."""

    def __init__(
        self,
        train_file: Optional[str] = None,
        val_file: Optional[str] = None,
        test_file: Optional[str] = None,
        predict_file: Optional[str] = None,
        text_column: Column = "text",
        label_column: Column = "label",
        header: Optional[bool] = None,
        delimiter: Optional[str] = None,
        missing: Literal["error", "skip"] = "error",
        val_fraction: float = 0.1,
        tokenizer: Literal["word", "char", "bpe"] = "word",
        lowercase: bool = True,
        bpe_vocab_size: int = 8000,
        min_freq: int = 1,
        max_vocab: Optional[int] = None,
        max_length: int = 400,
        num_train: int = 8000,
        num_val: int = 1000,
        num_test: int = 1000,
        batch_size: int = 64,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """
        Args:
            train_file: CSV/TSV of training texts and labels; null generates the review corpus.
            val_file: Validation file; null holds out val_fraction of train_file.
            test_file: Test file (needed for `seqkit test` when train_file is set).
            predict_file: Texts to classify: a .txt file (one text per line) or a CSV/TSV with
                the text column (a label column there is ignored). Default: the test texts.
            text_column: Column of the text: a header name or a 0-based index.
            label_column: Column of the label: a header name or a 0-based index.
            header: Whether the first row is a header; null: yes when a column is given by name.
            delimiter: Field separator; null: tab for .tsv files, comma otherwise.
            missing: Rows with an empty text or label: "error" (names the line) or "skip".
            val_fraction: Share of train_file held out for validation when val_file is null.
            tokenizer: "word" (words and punctuation), "char", or "bpe" (subwords learnt from
                the training texts), all from seqkit.Tokenizer.
            lowercase: Lowercase texts before tokenising.
            bpe_vocab_size: Subword vocabulary size for tokenizer "bpe".
            min_freq: Tokens seen fewer times in training map to <unk>.
            max_vocab: Keep at most this many tokens (the most frequent); null keeps all.
            max_length: Truncate texts to this many tokens.
            num_train: Generated training reviews.
            num_val: Generated validation reviews.
            num_test: Generated test reviews.
            batch_size: Texts per training batch (per process under DDP).
            eval_batch_size: Texts per evaluation batch (default: batch_size).
            num_workers: DataLoader worker processes.
            seed: Seed of the generator, the validation split and shuffling.
        """
        super().__init__(batch_size, eval_batch_size, num_workers, seed)
        for key, path in (("train_file", train_file), ("val_file", val_file), ("test_file", test_file),
                          ("predict_file", predict_file)):
            if path is not None:
                require_file(path, f"data.{key}")
        if (val_file or test_file) and not train_file:
            raise DataError("data.val_file/test_file need data.train_file (the vocabulary is built from it)")
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        if max_length < 1:
            raise DataError(f"data.max_length must be >= 1, got {max_length}")
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.predict_file = predict_file
        self.columns = (text_column, label_column)
        self.header, self.delimiter, self.missing, self.val_fraction = header, delimiter, missing, val_fraction
        self.tokenizer_args = {"kind": tokenizer, "lowercase": lowercase, "bpe_vocab_size": bpe_vocab_size}
        self.min_freq, self.max_vocab, self.max_length = min_freq, max_vocab, max_length
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.tokenizer: Tokenizer | None = None
        self.vocab: Vocab | None = None
        self.labels: list[str] | None = None
        self._cache: dict[str, list] = {}

    # -- raw rows --------------------------------------------------------------------------------
    def _read(self, path: str, labels: bool = True) -> list[tuple[str, Optional[str], str]]:
        text_col, label_col = self.columns
        rows = read_table(path, text_col, label_col if labels else None, self.header, self.delimiter, self.missing)
        return [(text, label, f"{path}:{line}") for text, label, line in rows]

    def _raw(self, split: str) -> list[tuple[str, Optional[str], str]]:
        """(text, label, where) rows of a split; ``where`` names the file and line for errors."""
        if split in self._cache:
            return self._cache[split]
        train_file = self.files["train"]
        if train_file is None:
            offset = {"train": 0, "val": 1, "test": 2}[split]
            gen = generate_reviews(self.sizes[split], self.seed * 1000 + offset)
            rows = [(t, label, f"generated {split} review {k + 1}") for k, (t, label) in enumerate(gen)]
        elif split == "test":
            if self.files["test"] is None:
                raise DataError("data.test_file is not set: there is no test data")
            rows = self._read(self.files["test"])
        elif split == "val" and self.files["val"] is not None:
            rows = self._read(self.files["val"])
        elif self.files["val"] is not None:
            rows = self._read(train_file)
        else:  # hold out a seeded share of the training file for validation
            rows = self._read(train_file)
            order = list(range(len(rows)))
            random.Random(self.seed).shuffle(order)
            n_val = max(1, round(len(rows) * self.val_fraction))
            if n_val >= len(rows):
                raise DataError(f"{train_file}: {len(rows)} examples are too few to hold out a validation share")
            keep = sorted(order[:n_val]) if split == "val" else sorted(order[n_val:])
            rows = [rows[k] for k in keep]
        self._cache[split] = rows
        return rows

    # -- vocabulary and spec ---------------------------------------------------------------------
    def build_spec(self) -> Spec:
        if self.vocab is None:
            train = self._raw("train")
            self.tokenizer = Tokenizer(**self.tokenizer_args).fit(t for t, _, _ in train)
            self.vocab = Vocab.build((self.tokenizer.tokenize(t) for t, _, _ in train), self.min_freq, self.max_vocab)
            self.labels = sorted({label for _, label, _ in train})
            if len(self.labels) < 2:
                raise DataError(f"the training data has a single label {self.labels}: nothing to classify")
        return Spec(
            input_kind="tokens",
            input_size=len(self.vocab),
            pad_id=self.vocab.pad_id,
            num_classes=len(self.labels),
            vocabs={"tokens": self.vocab},
            extra={"labels": list(self.labels)},
        )

    def encode_text(self, text: str) -> list[int]:
        ids = self.vocab.encode(self.tokenizer.tokenize(text))[: self.max_length]
        return ids or [self.vocab.unk_id]  # an all-whitespace text still gets one step

    def _encode(self, rows: list[tuple[str, Optional[str], str]]) -> _Texts:
        index = {label: i for i, label in enumerate(self.labels)}
        items = []
        for text, label, where in rows:
            if label is None:
                y = -1
            elif label in index:
                y = index[label]
            else:
                raise DataError(f"{where}: label {label!r} was not seen in training (known: {', '.join(self.labels)})")
            items.append((self.encode_text(text), y, text))
        return _Texts(items)

    def setup(self, stage: str) -> None:
        self.spec  # noqa: B018 - builds tokenizer and vocabulary unless restored from a checkpoint
        if stage == "fit":
            self.train_set = self._encode(self._raw("train"))
        if stage in ("fit", "validate"):
            self.val_set = self._encode(self._raw("val"))
        if stage == "test":
            self.test_set = self._encode(self._raw("test"))
        if stage == "predict":
            self.predict_set = self._encode(self._predict_rows())

    def _predict_rows(self) -> list[tuple[str, None, str]]:
        path = self.predict_file
        if path is None:
            return [(t, None, w) for t, _, w in self._raw("test")]
        if path.lower().endswith(".txt"):
            with open(path, encoding="utf-8") as fh:
                return [(line.strip(), None, f"{path}:{k}") for k, line in enumerate(fh, 1) if line.strip()]
        return [(t, None, w) for t, _, w in self._read(path, labels=False)]

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        targets = torch.tensor([y for _, y, _ in examples], dtype=torch.long)
        return Batch(inputs=inputs, lengths=lengths, targets=targets, extra={"input": [t for _, _, t in examples]})

    # -- checkpoint state ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        if self.vocab is None:
            return {}
        return {"tokenizer": self.tokenizer.state_dict(), "vocab": self.vocab.state_dict(), "labels": list(self.labels)}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.tokenizer = Tokenizer.from_state(state["tokenizer"])
            self.vocab = Vocab.from_state(state["vocab"])
            self.labels = list(state["labels"])
