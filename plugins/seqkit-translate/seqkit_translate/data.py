"""Parallel text for translation: sentence pairs from local files, or the embedded demo corpus.

Input forms (each of ``train_file``, ``val_file``, ``test_file``):

* a TSV path, one pair per line, ``source<TAB>target`` (further columns, such as the attribution
  column of Tatoeba/Anki exports, are ignored);
* a list of two line-aligned files, ``[train.src, train.tgt]`` (line n of one translates line n
  of the other).

Without ``val_file``/``test_file`` the training pairs are split (seeded) by ``val_fraction`` and
``test_fraction``. Without ``train_file`` the embedded English -> Portuguese corpus is generated.

Tokenisation: character, whitespace/punctuation word, or subword BPE (Sennrich et al. 2016)
trained on the training split with Hugging Face ``tokenizers`` (see ``seqkit.text``); the
vocabularies and tokenizers are part of ``state_dict``, so a checkpoint predicts on its own.

Bad input: a line without a tab, an empty side, undecodable bytes, unequal line counts or a file
with no pairs raise a DataError naming file and line; ``bad_lines: skip`` skips such lines
instead and logs how many. Sentences longer than the maximum length are truncated with one
warning per split that says how many were.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Literal, Optional, Union

import torch
from torch.utils.data import Dataset

from seqkit import Batch, DataError, SeqDataModule, Spec, Tokenizer, Vocab, pad, require_file

log = logging.getLogger("seqkit.translate")

Pair = tuple[str, str]
Where = tuple[str, int]  # (file, line) of a pair, for messages


def _decode_line(raw: bytes, path: str, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if lineno == 1:
        text = text.lstrip("\ufeff")  # a byte-order mark some editors write
    return text.rstrip("\r\n")


class _BadLines:
    """Raise on a bad line, or (``skip``) count it and report once per file."""

    def __init__(self, policy: str) -> None:
        self.policy, self.skipped, self.first = policy, 0, ""

    def __call__(self, message: str) -> None:
        if self.policy == "error":
            raise DataError(message + " (set data.init_args.bad_lines: skip to skip such lines)")
        self.skipped += 1
        self.first = self.first or message

    def report(self, path: str) -> None:
        if self.skipped:
            log.warning("seqkit: skipped %d bad line(s) in %s (first: %s)", self.skipped, path, self.first)


def read_tsv(path: str, bad_lines: str = "error") -> list[Pair]:
    """``(source, target)`` pairs from a ``source<TAB>target`` file; blank lines are ignored."""
    require_file(path, "parallel text file")
    pairs, bad = [], _BadLines(bad_lines)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = _decode_line(raw, path, lineno)
            except DataError as exc:
                bad(str(exc))
                continue
            if not line.strip():
                continue
            if "\t" not in line:
                bad(f"{path}:{lineno}: expected 'source<TAB>target', found no tab")
                continue
            src, tgt = line.split("\t")[:2]
            if not src.strip() or not tgt.strip():
                bad(f"{path}:{lineno}: empty {'source' if not src.strip() else 'target'} sentence")
                continue
            pairs.append((src.strip(), tgt.strip()))
    bad.report(path)
    if not pairs:
        raise DataError(f"{path}: no sentence pairs (expected lines of 'source<TAB>target')")
    return pairs


def read_aligned(src_path: str, tgt_path: str, bad_lines: str = "error") -> list[Pair]:
    """Pairs from two line-aligned files; lines blank on both sides are ignored."""
    require_file(src_path, "source file")
    require_file(tgt_path, "target file")
    with open(src_path, "rb") as fs, open(tgt_path, "rb") as ft:
        src_raw, tgt_raw = fs.readlines(), ft.readlines()
    if len(src_raw) != len(tgt_raw):
        raise DataError(f"{src_path} has {len(src_raw)} lines but {tgt_path} has {len(tgt_raw)}: line-aligned files must match")
    pairs, bad = [], _BadLines(bad_lines)
    for lineno, (rs, rt) in enumerate(zip(src_raw, tgt_raw), 1):
        try:
            src, tgt = _decode_line(rs, src_path, lineno).strip(), _decode_line(rt, tgt_path, lineno).strip()
        except DataError as exc:
            bad(str(exc))
            continue
        if not src and not tgt:
            continue
        if not src or not tgt:
            bad(f"{src_path if not src else tgt_path}:{lineno}: empty line where the other file has a sentence")
            continue
        pairs.append((src, tgt))
    bad.report(f"{src_path} / {tgt_path}")
    if not pairs:
        raise DataError(f"{src_path} / {tgt_path}: no sentence pairs")
    return pairs


def read_source_lines(path: str) -> list[str]:
    """One source sentence per line, every line kept (a blank line translates to a blank line)."""
    require_file(path, "data.predict_file")
    with open(path, "rb") as fh:
        return [_decode_line(raw, path, n).strip() for n, raw in enumerate(fh, 1)]


class _Pairs(Dataset):
    """Encoded pairs; ``lengths`` (source + target tokens) drives the core's length bucketing."""

    def __init__(self, items: list[dict]) -> None:
        self.items = items
        self.lengths = [len(it["src"]) + len(it["tgt"]) for it in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class ParallelTextData(SeqDataModule):
    """Sentence pairs for translation: your TSV or line-aligned files, or the embedded demo corpus."""

    def __init__(
        self,
        train_file: Optional[Union[str, list[str]]] = None,
        val_file: Optional[Union[str, list[str]]] = None,
        test_file: Optional[Union[str, list[str]]] = None,
        predict_file: Optional[str] = None,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        num_pairs: int = 30000,
        source_tokenizer: Literal["word", "char", "bpe"] = "word",
        target_tokenizer: Literal["word", "char", "bpe"] = "word",
        lowercase: bool = False,
        bpe_vocab_size: int = 4000,
        min_freq: int = 1,
        max_vocab_size: Optional[int] = None,
        max_source_length: int = 100,
        max_target_length: int = 100,
        bad_lines: Literal["error", "skip"] = "error",
        batch_size: int = 64,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        """
        Args:
            train_file: Training pairs: a TSV (source<TAB>target per line) or a list of two
                line-aligned files [source, target]. null: generate the demo corpus.
            val_file: Validation pairs, same forms; null: split off val_fraction of train_file.
            test_file: Test pairs, same forms; null: split off test_fraction of train_file.
            predict_file: Raw source sentences, one per line, for ``seqkit predict`` (default:
                the test split's sources).
            val_fraction: Share of the training pairs held out for validation when val_file is null.
            test_fraction: Share of the training pairs held out for test when test_file is null.
            num_pairs: Size of the generated demo corpus (before the split).
            source_tokenizer: "word" (words and punctuation), "char" (characters) or "bpe" (subwords).
            target_tokenizer: The same choice for the target side.
            lowercase: Lowercase both sides before tokenising.
            bpe_vocab_size: Subword vocabulary size per side for "bpe".
            min_freq: Tokens seen fewer times in training map to <unk>.
            max_vocab_size: Largest vocabulary per side (specials included); null: no limit.
            max_source_length: Longer source sentences (in tokens) are truncated, with a warning.
            max_target_length: Longer target sentences (in tokens) are truncated, with a warning.
            bad_lines: "error": a malformed line stops with file:line; "skip": skip it and log
                the count.
            batch_size: Sentence pairs per training batch (per process under DDP).
            eval_batch_size: Pairs per validation/test/predict batch (default: batch_size).
            num_workers: DataLoader worker processes.
            seed: Seed of the generated corpus, of the split and of shuffling.
        """
        super().__init__(batch_size, eval_batch_size, num_workers, seed)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise DataError(f"data.{name} must be in [0, 1), got {value}")
        if val_fraction + test_fraction >= 1.0:
            raise DataError("data.val_fraction + data.test_fraction must leave some training pairs")
        for name, value in (("max_source_length", max_source_length), ("max_target_length", max_target_length)):
            if value < 1:
                raise DataError(f"data.{name} must be >= 1, got {value}")
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.predict_file = predict_file
        self.fractions = {"val": val_fraction, "test": test_fraction}
        self.num_pairs = num_pairs
        self.kinds = {"source": source_tokenizer, "target": target_tokenizer}
        self.lowercase, self.bpe_vocab_size = lowercase, bpe_vocab_size
        self.min_freq, self.max_vocab_size = min_freq, max_vocab_size
        self.max_len = {"source": max_source_length, "target": max_target_length}
        self.bad_lines = bad_lines
        self.tokenizers: dict[str, Tokenizer] = {}
        self.vocabs: dict[str, Vocab] = {}
        self._splits: dict[str, list[Pair]] | None = None

    # -- raw pairs ---------------------------------------------------------------------------
    def _read(self, spec: Union[str, list[str]], key: str) -> list[Pair]:
        if isinstance(spec, str):
            return read_tsv(spec, self.bad_lines)
        if isinstance(spec, (list, tuple)) and len(spec) == 2:
            return read_aligned(spec[0], spec[1], self.bad_lines)
        raise DataError(f"data.{key}: expected a TSV path or a list of two line-aligned files [source, target], got {spec!r}")

    def raw_splits(self) -> dict[str, list[Pair]]:
        """Train/val/test pairs, read (or generated) once; a seeded split fills missing files."""
        if self._splits is not None:
            return self._splits
        if self.files["train"] is None:
            from seqkit_translate.corpus import generate_pairs

            pairs = generate_pairs(self.num_pairs, self.seed)
        else:
            pairs = self._read(self.files["train"], "train_file")
        missing = [s for s in ("val", "test") if self.files[s] is None]
        splits: dict[str, list[Pair]] = {}
        if missing:
            order = list(range(len(pairs)))
            random.Random(self.seed).shuffle(order)
            start = 0
            for s in missing:
                n = max(1, round(len(pairs) * self.fractions[s])) if self.fractions[s] > 0 else 0
                splits[s] = [pairs[i] for i in sorted(order[start : start + n])]
                start += n
            held = set(order[:start])
            pairs = [p for i, p in enumerate(pairs) if i not in held]
            if not pairs:
                raise DataError(f"data.train_file: too few pairs ({len(order)}) to split off validation and test")
        splits["train"] = pairs
        for s in ("val", "test"):
            if self.files[s] is not None:
                splits[s] = self._read(self.files[s], f"{s}_file")
        self._splits = splits
        return splits

    # -- vocabularies ------------------------------------------------------------------------
    def build_spec(self) -> Spec:
        if not self.vocabs:
            train = self.raw_splits()["train"]
            for side, col in (("source", 0), ("target", 1)):
                tok = Tokenizer(self.kinds[side], lowercase=self.lowercase, bpe_vocab_size=self.bpe_vocab_size)
                tok.fit(p[col] for p in train)
                self.tokenizers[side] = tok
                self.vocabs[side] = Vocab.build(
                    (tok.tokenize(p[col]) for p in train), min_freq=self.min_freq, max_size=self.max_vocab_size
                )
        src, tgt = self.vocabs["source"], self.vocabs["target"]
        return Spec(
            input_kind="tokens",
            input_size=len(src),
            pad_id=src.pad_id,
            vocabs={"source": src, "target": tgt},
            extra={
                "source_tokenizer": self.tokenizers["source"],
                "target_tokenizer": self.tokenizers["target"],
                "max_target_length": self.max_len["target"],
            },
        )

    def _tokens(self, side: str, text: str, counter: list[int]) -> list[str]:
        tokens = self.tokenizers[side].tokenize(text)
        if len(tokens) > self.max_len[side]:
            counter[0] += 1
            tokens = tokens[: self.max_len[side]]
        return tokens

    def _encode(self, pairs: list[Pair], split: str) -> _Pairs:
        cut_src, cut_tgt = [0], [0]
        src_v, tgt_v = self.vocabs["source"], self.vocabs["target"]
        tgt_tok = self.tokenizers["target"]
        items = []
        for src, tgt in pairs:
            s_tok = self._tokens("source", src, cut_src)
            t_tok = self._tokens("target", tgt, cut_tgt)
            items.append({
                "src": torch.tensor(src_v.encode(s_tok), dtype=torch.long),
                "tgt": torch.tensor(tgt_v.encode(t_tok, add_eos=True), dtype=torch.long),
                "src_tokens": s_tok,
                # the reference goes through the same tokenize/detokenize round trip as the
                # model's output, so BLEU measures the translation, not the detokeniser
                "reference": tgt_tok.detokenize(tgt_tok.tokenize(tgt)),
            })
        for side, n, limit in (("source", cut_src[0], self.max_len["source"]), ("target", cut_tgt[0], self.max_len["target"])):
            if n:
                log.warning("seqkit: %s split: truncated %d %s sentence(s) to data.max_%s_length=%d tokens",
                            split, n, side, side, limit)
        return _Pairs(items)

    def setup(self, stage: str) -> None:
        self.spec  # noqa: B018 - builds the vocabularies unless restored from a checkpoint
        if stage == "fit":
            self.train_set = self._encode(self.raw_splits()["train"], "train")
        if stage in ("fit", "validate"):
            self.val_set = self._encode(self.raw_splits()["val"], "val")
        if stage == "test":
            self.test_set = self._encode(self.raw_splits()["test"], "test")
        if stage == "predict":
            if self.predict_file is None:
                lines = [src for src, _ in self.raw_splits()["test"]]
            else:
                lines = read_source_lines(self.predict_file)
            cut, items = [0], []
            for line in lines:
                s_tok = self._tokens("source", line, cut) if line else []
                items.append({"src": torch.tensor(self.vocabs["source"].encode(s_tok), dtype=torch.long),
                              "tgt": torch.zeros(0, dtype=torch.long), "src_tokens": s_tok, "reference": None})
            if cut[0]:
                log.warning("seqkit: predict: truncated %d source sentence(s) to data.max_source_length=%d tokens",
                            cut[0], self.max_len["source"])
            self.predict_set = _Pairs(items)

    def collate(self, examples: list[dict]) -> Batch:
        src_pad, tgt_pad = self.vocabs["source"].pad_id, self.vocabs["target"].pad_id
        inputs, lengths = pad([ex["src"] for ex in examples], value=src_pad)
        if inputs.shape[1] == 0:  # every sentence blank (predict): one pad step keeps shapes valid
            inputs = torch.full((len(examples), 1), src_pad, dtype=torch.long)
        targets = target_lengths = None
        if examples and examples[0]["reference"] is not None:
            targets, target_lengths = pad([ex["tgt"] for ex in examples], value=tgt_pad)
        return Batch(
            inputs=inputs,
            lengths=lengths,
            targets=targets,
            target_lengths=target_lengths,
            extra={"source_tokens": [ex["src_tokens"] for ex in examples],
                   "references": [ex["reference"] for ex in examples]},
        )

    # -- checkpoint state --------------------------------------------------------------------
    def state_dict(self) -> dict:
        if not self.vocabs:
            return {}
        return {
            "vocabs": {side: v.state_dict() for side, v in self.vocabs.items()},
            "tokenizers": {side: t.state_dict() for side, t in self.tokenizers.items()},
            "max_len": dict(self.max_len),
        }

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.vocabs = {side: Vocab.from_state(v) for side, v in state["vocabs"].items()}
            self.tokenizers = {side: Tokenizer.from_state(t) for side, t in state["tokenizers"].items()}
