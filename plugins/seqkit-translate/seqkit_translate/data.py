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
vocabularies and tokenizers are the module's fitted state, saved in checkpoints, so a checkpoint
predicts on its own (the training files are never read again).

Bad input: a line without a tab, an empty side, undecodable bytes, unequal line counts or a file
with no pairs raise a DataError naming file and line; ``on_bad: skip`` skips such lines instead
and logs how many. Sentences longer than the maximum length are truncated with one
warning per split that says how many were.
"""

from __future__ import annotations

import logging
import random
from typing import Literal, Optional, Union

import torch

from seqkit import DataError, Examples, OnBad, SeqDataModule, Tokenizer, Vocab, pad, require_file
from seqkit_translate.spec import TranslationBatch, TranslationSpec

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

    def __init__(self, policy: OnBad) -> None:
        self.policy, self.skipped, self.first = policy, 0, ""

    def __call__(self, message: str) -> None:
        if self.policy == "error":
            raise DataError(message + " (set data.init_args.on_bad: skip to skip such lines)")
        self.skipped += 1
        self.first = self.first or message

    def report(self, path: str) -> None:
        if self.skipped:
            log.warning("seqkit: skipped %d bad line(s) in %s (first: %s)", self.skipped, path, self.first)


def read_tsv(path: str, on_bad: OnBad = "error") -> list[Pair]:
    """``(source, target)`` pairs from a ``source<TAB>target`` file; blank lines are ignored."""
    require_file(path, "parallel text file")
    pairs, bad = [], _BadLines(on_bad)
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


def read_aligned(src_path: str, tgt_path: str, on_bad: OnBad = "error") -> list[Pair]:
    """Pairs from two line-aligned files; lines blank on both sides are ignored."""
    require_file(src_path, "source file")
    require_file(tgt_path, "target file")
    with open(src_path, "rb") as fs, open(tgt_path, "rb") as ft:
        src_raw, tgt_raw = fs.readlines(), ft.readlines()
    if len(src_raw) != len(tgt_raw):
        raise DataError(f"{src_path} has {len(src_raw)} lines but {tgt_path} has {len(tgt_raw)}: line-aligned files must match")
    pairs, bad = [], _BadLines(on_bad)
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


class ParallelTextData(SeqDataModule):
    """Sentence pairs for translation: your TSV or line-aligned files, or the embedded demo corpus."""

    spec_type = TranslationSpec
    fitted = {"src_tokenizer": Tokenizer, "tgt_tokenizer": Tokenizer, "src_vocab": Vocab, "tgt_vocab": Vocab}

    def __init__(
        self,
        train_file: Optional[Union[str, list[str]]] = None,
        val_file: Optional[Union[str, list[str]]] = None,
        test_file: Optional[Union[str, list[str]]] = None,
        predict_file: Optional[str] = None,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        num_pairs: int = 30000,
        source_tokenizer: Literal["word", "char", "bpe", "unigram"] = "word",
        target_tokenizer: Literal["word", "char", "bpe", "unigram"] = "word",
        joint_vocab: bool = False,
        lowercase: bool = False,
        bpe_vocab_size: int = 4000,
        min_freq: int = 1,
        max_vocab: Optional[int] = None,
        max_source_length: int = 100,
        max_target_length: int = 100,
        on_bad: OnBad = "error",
        **kwargs,
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
            source_tokenizer: "word" (words and punctuation), "char" (characters), "bpe"
                (subwords, Sennrich et al. 2016) or "unigram" (subwords of a unigram language
                model, Kudo 2018: SentencePiece's default).
            target_tokenizer: The same choice for the target side.
            joint_vocab: One tokenizer and one vocabulary for both sides, fit on the source and
                target training sentences together (the tokenizers must be the same kind); needed
                by model.head.init_args.share_embeddings. Names, numbers, placeholders and
                identifiers copied from source to target then share their ids.
            lowercase: Lowercase both sides before tokenising.
            bpe_vocab_size: Subword vocabulary size per side for "bpe" and "unigram" (of the
                joint vocabulary with joint_vocab).
            min_freq: Tokens seen fewer times in training map to <unk>.
            max_vocab: Largest vocabulary per side (specials included); null: no limit.
            max_source_length: Longer source sentences (in tokens) are truncated, with a warning.
            max_target_length: Longer target sentences (in tokens) are truncated, with a warning.
            on_bad: "error": a malformed line stops with file:line; "skip": skip it and log
                the count.
        """
        super().__init__(**kwargs)
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= value < 1.0:
                raise DataError(f"data.init_args.{name} must be in [0, 1), got {value}")
        if val_fraction + test_fraction >= 1.0:
            raise DataError("data.init_args.val_fraction + test_fraction must leave some training pairs")
        for name, value in (("max_source_length", max_source_length), ("max_target_length", max_target_length)):
            if value < 1:
                raise DataError(f"data.init_args.{name} must be >= 1, got {value}")
        # files are checked when they are read, not here: a module restored from a checkpoint
        # predicts without its training files
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.predict_file = predict_file
        self.fractions = {"val": val_fraction, "test": test_fraction}
        self.num_pairs = num_pairs
        if joint_vocab and source_tokenizer != target_tokenizer:
            raise DataError(f"data.init_args.joint_vocab needs the same source_tokenizer and target_tokenizer "
                            f"(got {source_tokenizer} and {target_tokenizer})")
        self.kinds = {"source": source_tokenizer, "target": target_tokenizer}
        self.joint_vocab = joint_vocab
        self.lowercase, self.bpe_vocab_size = lowercase, bpe_vocab_size
        self.min_freq, self.max_vocab = min_freq, max_vocab
        self.max_len = {"source": max_source_length, "target": max_target_length}
        self.on_bad = on_bad
        self._splits: dict[str, list[Pair]] | None = None

    @property
    def vocabs(self) -> dict[str, Vocab]:
        """The fitted vocabularies by side ("source", "target")."""
        return {"source": self.src_vocab, "target": self.tgt_vocab}

    @property
    def tokenizers(self) -> dict[str, Tokenizer]:
        """The fitted tokenizers by side ("source", "target")."""
        return {"source": self.src_tokenizer, "target": self.tgt_tokenizer}

    # -- raw pairs ---------------------------------------------------------------------------
    def _read(self, files: Union[str, list[str]], key: str) -> list[Pair]:
        if isinstance(files, str):
            return read_tsv(self.split_file(key, files), self.on_bad)
        if isinstance(files, (list, tuple)) and len(files) == 2:
            return read_aligned(self.split_file(key, files[0]), self.split_file(key, files[1]), self.on_bad)
        raise DataError(f"data.init_args.{key}: expected a TSV path or a list of two line-aligned files "
                        f"[source, target], got {files!r}")

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
                raise DataError(f"data.init_args.train_file: too few pairs ({len(order)}) to split off validation and test")
        splits["train"] = pairs
        for s in ("val", "test"):
            if self.files[s] is not None:
                splits[s] = self._read(self.files[s], f"{s}_file")
        self._splits = splits
        return splits

    # -- fitted state and spec ---------------------------------------------------------------
    def fit_state(self) -> None:
        train = self.raw_splits()["train"]
        if self.joint_vocab:
            texts = [p[0] for p in train] + [p[1] for p in train]
            tok = Tokenizer(self.kinds["source"], lowercase=self.lowercase, bpe_vocab_size=self.bpe_vocab_size)
            tok.fit(texts)
            vocab = Vocab.build((tok.tokenize(t) for t in texts), min_freq=self.min_freq, max_size=self.max_vocab)
            self.src_tokenizer = self.tgt_tokenizer = tok
            self.src_vocab = self.tgt_vocab = vocab
            return
        for side, col in (("source", 0), ("target", 1)):
            tok = Tokenizer(self.kinds[side], lowercase=self.lowercase, bpe_vocab_size=self.bpe_vocab_size)
            tok.fit(p[col] for p in train)
            vocab = Vocab.build((tok.tokenize(p[col]) for p in train), min_freq=self.min_freq, max_size=self.max_vocab)
            prefix = "src" if side == "source" else "tgt"
            setattr(self, f"{prefix}_tokenizer", tok)
            setattr(self, f"{prefix}_vocab", vocab)

    def build_spec(self) -> TranslationSpec:
        return TranslationSpec(
            input_kind="tokens",
            input_size=len(self.src_vocab),
            pad_id=self.src_vocab.pad_id,
            vocabs={"source": self.src_vocab, "target": self.tgt_vocab},
            source_tokenizer=self.src_tokenizer,
            target_tokenizer=self.tgt_tokenizer,
            max_target_length=self.max_len["target"],
        )

    # -- datasets ----------------------------------------------------------------------------
    def _tokens(self, side: str, text: str, counter: list[int]) -> list[str]:
        tokens = self.tokenizers[side].tokenize(text)
        if len(tokens) > self.max_len[side]:
            counter[0] += 1
            tokens = tokens[: self.max_len[side]]
        return tokens

    def _warn_truncated(self, split: str, side: str, n: int) -> None:
        if n:
            log.warning("seqkit: %s split: truncated %d %s sentence(s) to data.max_%s_length=%d tokens",
                        split, n, side, side, self.max_len[side])

    def _encode(self, pairs: list[Pair], split: str) -> Examples:
        cut_src, cut_tgt = [0], [0]
        items = []
        for src, tgt in pairs:
            s_tok = self._tokens("source", src, cut_src)
            t_tok = self._tokens("target", tgt, cut_tgt)
            items.append({
                "src": torch.tensor(self.src_vocab.encode(s_tok), dtype=torch.long),
                "tgt": torch.tensor(self.tgt_vocab.encode(t_tok, add_eos=True), dtype=torch.long),
                "src_tokens": s_tok,
                "text": src,
                # the reference goes through the same tokenize/detokenize round trip as the
                # model's output, so BLEU measures the translation, not the detokeniser
                "reference": self.tgt_tokenizer.detokenize(self.tgt_tokenizer.tokenize(tgt)),
            })
        self._warn_truncated(split, "source", cut_src[0])
        self._warn_truncated(split, "target", cut_tgt[0])
        return Examples(items, lengths=[len(it["src"]) + len(it["tgt"]) for it in items])

    def dataset(self, split: str) -> Examples:
        if split != "predict":
            return self._encode(self.raw_splits()[split], split)
        if self.predict_file is None:
            lines = [src for src, _ in self.raw_splits()["test"]]
        else:
            lines = read_source_lines(self.split_file("predict_file"))
        cut, items = [0], []
        for line in lines:
            s_tok = self._tokens("source", line, cut) if line else []
            items.append({"src": torch.tensor(self.src_vocab.encode(s_tok), dtype=torch.long),
                          "tgt": torch.zeros(0, dtype=torch.long), "src_tokens": s_tok, "text": line, "reference": None})
        self._warn_truncated("predict", "source", cut[0])
        return Examples(items, lengths=[len(it["src"]) for it in items])

    def collate(self, examples: list[dict]) -> TranslationBatch:
        src_pad, tgt_pad = self.src_vocab.pad_id, self.tgt_vocab.pad_id
        inputs, lengths = pad([ex["src"] for ex in examples], value=src_pad)
        if inputs.shape[1] == 0:  # every sentence blank (predict): one pad step keeps shapes valid
            inputs = torch.full((len(examples), 1), src_pad, dtype=torch.long)
        targets = target_lengths = None
        if examples and examples[0]["reference"] is not None:
            targets, target_lengths = pad([ex["tgt"] for ex in examples], value=tgt_pad)
        return TranslationBatch(
            inputs=inputs,
            lengths=lengths,
            targets=targets,
            target_lengths=target_lengths,
            names=[ex["text"] for ex in examples],
            source_tokens=[ex["src_tokens"] for ex in examples],
            references=[ex["reference"] for ex in examples],
        )
