"""Text classification data (sentiment and the like): CSV/TSV files of text and label.

Files are parsed by pandas, through :func:`seqkit.read_table` (quoting, a delimiter inside quotes,
line breaks inside quoted texts; every row keeps its file line for error messages). Texts are
split by seqkit's shared :class:`seqkit.Tokenizer` (word, char or subword BPE; the same
implementation translation uses) and mapped to ids by a :class:`seqkit.Vocab` built from the
training texts only. Without files, a generated review corpus whose labels need word order is
used (see :mod:`seqkit_sentiment.corpus`).

Policies (``on_bad``): a row with a different number of fields than the header (or the first row)
and a row with an empty text or label are errors naming the file and line; ``on_bad: skip`` drops
such rows instead, with one warning. A validation or test label that never occurs in training is
an error naming the file, line and the known labels.

The tokenizer, the vocabulary and the label set are the fitted state (``fitted``): a module
restored from a checkpoint classifies ``predict_file`` without reading the training file.
"""

from __future__ import annotations

import random
from typing import Literal, Optional, Union

import torch
from lightning.pytorch.utilities import rank_zero_warn

from seqkit import Batch, DataError, Examples, Loader, OnBad, SeqDataModule, Spec, Tokenizer, Vocab, pad, read_table

from seqkit_sentiment.corpus import generate_reviews

Column = Union[str, int]


def _named(col: Optional[Column]) -> bool:
    return isinstance(col, str) and not col.isdigit()


def read_texts(
    path: str,
    text_column: Column,
    label_column: Optional[Column],
    header: Optional[bool] = None,
    delimiter: Optional[str] = None,
    on_bad: OnBad = "error",
) -> list[tuple[str, Optional[str], int]]:
    """(text, label, line) rows of a CSV/TSV file; ``label_column=None`` reads texts only.

    ``header=None`` means: the first row is a header when a column is given by name.
    """
    if header is None:
        header = _named(text_column) or _named(label_column)
    elif not header:
        for key, col in (("text_column", text_column), ("label_column", label_column)):
            if _named(col):
                raise DataError(f"data.init_args.{key}: {col!r} is a column name, but data.init_args.header is "
                                "false; give a 0-based index")
    columns = [text_column] if label_column is None else [text_column, label_column]
    table = read_table(path, columns, sep=delimiter, header=header, on_bad=on_bad)
    texts = table.iloc[:, 0].str.strip()
    labels = table.iloc[:, 1].str.strip() if label_column is not None else None
    empty_text = (texts == "").to_numpy()
    empty = empty_text | (labels == "").to_numpy() if labels is not None else empty_text
    if empty.any():
        k = int(empty.nonzero()[0][0])
        if on_bad == "error":
            what = "text" if empty_text[k] else "label"
            raise DataError(f"{path}:{table.index[k]}: empty {what} (set data.init_args.on_bad: skip to drop such rows)")
        rank_zero_warn(f"{path}: skipped {int(empty.sum())} rows with an empty text or label (data.init_args.on_bad: skip)")
    lines = table.index.tolist()
    label_list = labels.tolist() if labels is not None else [None] * len(lines)
    rows = [(t, y, n) for t, y, n, e in zip(texts.tolist(), label_list, lines, empty) if not e]
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def vocab_of_checkpoint(path: str) -> tuple[Tokenizer, Vocab]:
    """The tokenizer and vocabulary a text data module saved in the checkpoint ``path`` (read with
    ``weights_only=True``)."""
    from seqkit.checkpoint import read_checkpoint
    from seqkit.data import from_plain

    ckpt = read_checkpoint(path, "data.init_args.vocab_from")
    for state in ckpt.values():  # the data module's entry (TextLMData, TextClassificationData or a subclass)
        if isinstance(state, dict) and "tokenizer" in state and "vocab" in state:
            return from_plain(state["tokenizer"], Tokenizer), from_plain(state["vocab"], Vocab)
    raise DataError(f"data.init_args.vocab_from: {path} holds no text tokenizer and vocabulary "
                    "(it was not trained on TextLMData or TextClassificationData)")


class TextClassificationData(SeqDataModule):
    """Texts with one label each, from CSV/TSV files or the generated order-sensitive review corpus."""

    fitted = {"tokenizer": Tokenizer, "vocab": Vocab, "labels": list}
    vocab_needs_train_file: bool = True  # TextLMData may learn from unlabelled_file alone

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
        on_bad: OnBad = "error",
        val_fraction: float = 0.1,
        tokenizer: Literal["word", "char", "bpe", "unigram"] = "word",
        lowercase: bool = True,
        bpe_vocab_size: int = 8000,
        min_freq: int = 1,
        max_vocab: Optional[int] = None,
        max_length: int = 400,
        vocab_from: Optional[str] = None,
        num_train: int = 8000,
        num_val: int = 1000,
        num_test: int = 1000,
        loader: Loader = Loader(batch_size=64),
        **kwargs,
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
            on_bad: Rows with the wrong number of fields or an empty text or label: "error"
                (names the file and line) or "skip" (drops them, with a warning).
            val_fraction: Share of train_file held out for validation when val_file is null; 0
                trains on all of it with no validation.
            tokenizer: "word" (words and punctuation), "char", "bpe" or "unigram" (subwords learnt from
                the training texts), all from seqkit.Tokenizer.
            lowercase: Lowercase texts before tokenising.
            bpe_vocab_size: Subword vocabulary size for tokenizer "bpe" or "unigram".
            min_freq: Tokens seen fewer times in training map to <unk>.
            max_vocab: Keep at most this many tokens (the most frequent); null keeps all.
            max_length: Truncate texts to this many tokens.
            vocab_from: A checkpoint whose tokenizer and vocabulary to use instead of fitting
                them on train_file: the language model's that model.init_from starts from
                (ULMFiT-style fine-tuning, docs/sentiment.md). Read once, when fitting starts;
                the new checkpoint keeps them, so predict needs neither file.
            num_train: Generated training reviews.
            num_val: Generated validation reviews.
            num_test: Generated test reviews.
            loader: How texts are batched (64 per training batch by default).
        """
        super().__init__(loader=loader, **kwargs)
        if (val_file or test_file) and not train_file and self.vocab_needs_train_file:
            raise DataError("data.init_args.val_file/test_file need data.init_args.train_file "
                            "(the vocabulary is built from it)")
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(f"data.init_args.val_fraction must be in [0, 1), got {val_fraction}")
        if max_length < 1:
            raise DataError(f"data.init_args.max_length must be >= 1, got {max_length}")
        self.train_file, self.val_file, self.test_file, self.predict_file = train_file, val_file, test_file, predict_file
        self.columns = (text_column, label_column)
        self.header, self.delimiter, self.on_bad, self.val_fraction = header, delimiter, on_bad, val_fraction
        self.tokenizer_args = {"kind": tokenizer, "lowercase": lowercase, "bpe_vocab_size": bpe_vocab_size}
        self.min_freq, self.max_vocab, self.max_length = min_freq, max_vocab, max_length
        self.vocab_from = vocab_from
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self._cache: dict[str, list] = {}

    # -- raw rows --------------------------------------------------------------------------------
    def _read(self, key: str, labels: bool = True) -> list[tuple[str, Optional[str], str]]:
        path = self.split_file(key)
        text_col, label_col = self.columns
        rows = read_texts(path, text_col, label_col if labels else None, self.header, self.delimiter, self.on_bad)
        return [(text, label, f"{path}:{line}") for text, label, line in rows]

    def _raw(self, split: str) -> list[tuple[str, Optional[str], str]]:
        """(text, label, where) rows of a split; ``where`` names the file and line for errors."""
        if split in self._cache:
            return self._cache[split]
        if self.train_file is None:
            offset = {"train": 0, "val": 1, "test": 2}[split]
            gen = generate_reviews(self.sizes[split], self.seed * 1000 + offset)
            rows = [(t, label, f"generated {split} review {k + 1}") for k, (t, label) in enumerate(gen)]
        elif split == "test":
            if self.test_file is None:
                raise DataError("data.init_args.test_file is not set: there is no test data")
            rows = self._read("test_file")
        elif split == "val" and self.val_file is not None:
            rows = self._read("val_file")
        elif self.val_file is not None:
            rows = self._read("train_file")
        else:  # hold out a seeded share of the training file for validation
            train, val = self._hold_out(self._read("train_file"), str(self.train_file))
            rows = val if split == "val" else train
        self._cache[split] = rows
        return rows

    def _hold_out(self, rows: list, source: str) -> tuple[list, list]:
        """(train, val): a seeded val_fraction of ``rows`` held out, in file order (none when 0)."""
        order = list(range(len(rows)))
        random.Random(self.seed).shuffle(order)
        n_val = max(1, round(len(rows) * self.val_fraction)) if self.val_fraction > 0 else 0
        if n_val >= len(rows):
            raise DataError(f"{source}: {len(rows)} examples are too few to hold out a validation share")
        return [rows[k] for k in sorted(order[n_val:])], [rows[k] for k in sorted(order[:n_val])]

    # -- fitted state and spec -------------------------------------------------------------------
    def fit_state(self) -> None:
        train = self._raw("train")
        labels = sorted({label for _, label, _ in train})
        if len(labels) < 2:
            raise DataError(f"the training data has a single label {labels}: nothing to classify")
        self._fit_vocab(train)
        self.labels = labels

    def _fit_vocab(self, train: list[tuple[str, Optional[str], str]]) -> None:
        """The tokenizer and vocabulary: ``vocab_from``'s, or fitted on the training texts."""
        if self.vocab_from is not None:
            self.tokenizer, self.vocab = vocab_of_checkpoint(self.vocab_from)
        else:
            self.tokenizer = Tokenizer(**self.tokenizer_args).fit(t for t, _, _ in train)
            self.vocab = Vocab.build((self.tokenizer.tokenize(t) for t, _, _ in train), self.min_freq, self.max_vocab)

    def build_spec(self) -> Spec:
        return Spec(
            input_kind="tokens",
            input_size=len(self.vocab),
            pad_id=self.vocab.pad_id,
            num_classes=len(self.labels),
            labels=list(self.labels),
            vocabs={"tokens": self.vocab},
        )

    # -- datasets --------------------------------------------------------------------------------
    def encode_text(self, text: str) -> list[int]:
        ids = self.vocab.encode(self.tokenizer.tokenize(text))[: self.max_length]
        return ids or [self.vocab.unk_id]  # an all-whitespace text still gets one step

    def _encode(self, rows: list[tuple[str, Optional[str], str]]) -> Examples:
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
        return Examples(items)

    def dataset(self, split: str) -> Examples:
        return self._encode(self._predict_rows() if split == "predict" else self._raw(split))

    def _predict_rows(self) -> list[tuple[str, None, str]]:
        if self.predict_file is None:
            return [(t, None, w) for t, _, w in self._raw("test")]
        return self._texts("predict_file")

    def _texts(self, key: str) -> list[tuple[str, None, str]]:
        """The texts of the file in argument ``key``: a .txt file (one per line) or a CSV/TSV's text column."""
        path = self.split_file(key)
        if path.lower().endswith(".txt"):
            with open(path, encoding="utf-8") as fh:
                return [(line.strip(), None, f"{path}:{k}") for k, line in enumerate(fh, 1) if line.strip()]
        return [(t, None, w) for t, _, w in self._read(key, labels=False)]

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        targets = torch.tensor([y for _, y, _ in examples], dtype=torch.long)
        return Batch(inputs=inputs, lengths=lengths, targets=targets, names=[t for _, _, t in examples])


class TextLMData(TextClassificationData):
    """Language-model data for pretraining an encoder on a task's own text (Howard & Ruder 2018):
    each text becomes ``<bos> w1 .. wn`` as inputs and ``w1 .. wn <eos>`` as per-step targets,
    for a unidirectional stack and a ``PerStepHead`` over the vocabulary. The texts are
    ``train_file``'s (labels, if any, are ignored) and ``unlabelled_file``'s; the vocabulary is
    built from both. A classifier then starts from this run's checkpoint with
    ``model.init_from`` and ``data.init_args.vocab_from`` (docs/sentiment.md)."""

    vocab_needs_train_file = False

    def __init__(self, *args, unlabelled_file: Optional[str] = None, label_column: Optional[Column] = None,
                 **kwargs) -> None:
        """
        Args:
            unlabelled_file: More texts to train on: a .txt file (one text per line) or a
                CSV/TSV with the text column. null: train_file's texts only.
            label_column: Ignored for language modelling (labels, if the file has them, are not read).
        """
        super().__init__(*args, label_column=label_column if label_column is not None else "label", **kwargs)
        if self.train_file is None and unlabelled_file is None:
            raise DataError("TextLMData needs data.init_args.train_file or unlabelled_file: the texts to model")
        self.unlabelled_file = unlabelled_file

    def _read(self, key: str, labels: bool = True) -> list[tuple[str, Optional[str], str]]:
        return super()._read(key, labels=False)

    def _raw(self, split: str) -> list[tuple[str, Optional[str], str]]:
        """train: train_file's and unlabelled_file's texts, less a seeded val_fraction when there
        is no val_file; val: val_file's texts or that share; test: test_file's."""
        if split in self._cache:
            return self._cache[split]
        if split == "test":
            if self.test_file is None:
                raise DataError("data.init_args.test_file is not set: there is no test data")
            return self._cache.setdefault("test", self._read("test_file"))
        if split == "val" and self.val_file is not None:
            return self._cache.setdefault("val", self._read("val_file"))
        texts = ((self._read("train_file") if self.train_file is not None else [])
                 + (self._texts("unlabelled_file") if self.unlabelled_file is not None else []))
        if self.val_file is None:
            texts, self._cache["val"] = self._hold_out(texts, "the language model's texts")
        self._cache["train"] = texts
        return self._cache[split]

    def fit_state(self) -> None:
        self._fit_vocab(self._raw("train"))
        self.labels = []

    def build_spec(self) -> Spec:
        return Spec(input_kind="tokens", input_size=len(self.vocab), pad_id=self.vocab.pad_id, causal=True,
                    num_classes=len(self.vocab), labels=list(self.vocab.itos), vocabs={"tokens": self.vocab})

    def _encode(self, rows: list[tuple[str, Optional[str], str]]) -> Examples:
        items = []
        for text, _, where in rows:
            ids = self.vocab.encode(self.tokenizer.tokenize(text))
            if len(ids) < self.max_length:  # the whole text: its end is predicted too
                items.append(([self.vocab.bos_id, *ids], [*ids, self.vocab.eos_id], where))
            else:  # truncated: no false end
                ids = ids[: self.max_length]
                items.append(([self.vocab.bos_id, *ids[:-1]], ids, where))
        return Examples(items)

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([x for x, _, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        targets, _ = pad([y for _, y, _ in examples], value=self.vocab.pad_id, dtype=torch.long)
        return Batch(inputs=inputs, lengths=lengths, targets=targets, names=[w for _, _, w in examples])
