"""Text utilities shared by every text task: tokenizers (character, whitespace word, subword BPE)
and the vocabulary that maps tokens to ids.

Subword BPE (Sennrich et al. 2016) is trained locally with Hugging Face ``tokenizers``: a
maintained Rust implementation that trains in seconds and serialises to one JSON string, which
seqkit stores in checkpoints so prediction needs no other file.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Literal

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """Token <-> id map. Ids 0-3 are <pad>, <unk>, <bos>, <eos>; the rest follow frequency
    (ties broken alphabetically), so every process builds the same vocabulary from the same data."""

    def __init__(self, itos: list[str]) -> None:
        self.itos = list(itos)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}

    @classmethod
    def build(
        cls, sequences: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None, specials: bool = True
    ) -> Vocab:
        counts = Counter(tok for seq in sequences for tok in seq)
        ordered = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        head = list(SPECIALS) if specials else []
        ordered = [t for t in ordered if t not in head]
        if max_size is not None:
            ordered = ordered[: max(0, max_size - len(head))]
        return cls(head + ordered)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def pad_id(self) -> int:
        return self.stoi.get(PAD, 0)

    @property
    def unk_id(self) -> int:
        return self.stoi.get(UNK, 0)

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, tokens: Iterable[str], add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to <unk>."""
        unk = self.unk_id
        ids = [self.stoi.get(t, unk) for t in tokens]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], strip_specials: bool = True) -> list[str]:
        """Tokens of ``ids``, stopping at <eos> and dropping <pad>/<bos> when ``strip_specials``."""
        out = []
        for i in ids:
            tok = self.itos[int(i)]
            if strip_specials:
                if tok == EOS:
                    break
                if tok in (PAD, BOS):
                    continue
            out.append(tok)
        return out

    def state_dict(self) -> dict:
        return {"itos": list(self.itos)}

    @classmethod
    def from_state(cls, state: dict) -> Vocab:
        return cls(state["itos"])


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Tokenizer:
    """Splits text into tokens and joins tokens back into text.

    ``word`` splits on whitespace and punctuation, ``char`` into characters (spaces kept as
    tokens), ``bpe`` into learned subwords (Sennrich et al. 2016) and ``unigram`` into subwords of
    a unigram language model (Kudo 2018, SentencePiece's default), both fit on the training texts
    with ``fit``; ``bpe_vocab_size`` is the subword vocabulary size of either.
    """

    def __init__(self, kind: Literal["word", "char", "bpe", "unigram"] = "word", lowercase: bool = False,
                 bpe_vocab_size: int = 4000):
        if kind not in ("word", "char", "bpe", "unigram"):
            raise ValueError(f"unknown tokenizer {kind!r}; choose one of: word, char, bpe, unigram")
        self.kind, self.lowercase, self.bpe_vocab_size = kind, lowercase, bpe_vocab_size
        self._bpe = None

    def _norm(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def fit(self, texts: Iterable[str]) -> Tokenizer:
        """Learn the subword merges (``bpe`` only; the other kinds need no training)."""
        if self.kind in ("bpe", "unigram"):
            from tokenizers import Tokenizer as HFTokenizer
            from tokenizers import decoders, models, pre_tokenizers, trainers

            if self.kind == "bpe":
                tok = HFTokenizer(models.BPE(unk_token=UNK))
                trainer = trainers.BpeTrainer(vocab_size=self.bpe_vocab_size, special_tokens=list(SPECIALS),
                                              show_progress=False)
            else:
                tok = HFTokenizer(models.Unigram())
                trainer = trainers.UnigramTrainer(vocab_size=self.bpe_vocab_size, special_tokens=list(SPECIALS),
                                                  unk_token=UNK, show_progress=False)
            tok.pre_tokenizer = pre_tokenizers.Metaspace()
            tok.decoder = decoders.Metaspace()
            tok.train_from_iterator((self._norm(t) for t in texts), trainer=trainer)
            self._bpe = tok
        return self

    def tokenize(self, text: str) -> list[str]:
        text = self._norm(text)
        if self.kind == "word":
            return _WORD.findall(text)
        if self.kind == "char":
            return list(text)
        if self._bpe is None:
            raise RuntimeError(f"the {self.kind} tokenizer must be fit on training text before use")
        return self._bpe.encode(text).tokens

    def detokenize(self, tokens: list[str]) -> str:
        if self.kind == "char":
            return "".join(tokens)
        if self.kind in ("bpe", "unigram") and self._bpe is not None:
            return self._bpe.decoder.decode(tokens)
        text = " ".join(tokens)
        text = re.sub(r"(?<=\w) - (?=\w)", "-", text)  # "segunda - feira" -> "segunda-feira"
        return re.sub(r" ([.,!?;:%)\]}'])", r"\1", re.sub(r"([(\[{]) ", r"\1", text))

    def state_dict(self) -> dict:
        state = {"kind": self.kind, "lowercase": self.lowercase, "bpe_vocab_size": self.bpe_vocab_size}
        if self._bpe is not None:
            state["bpe"] = self._bpe.to_str()
        return state

    @classmethod
    def from_state(cls, state: dict) -> Tokenizer:
        tok = cls(state["kind"], state["lowercase"], state["bpe_vocab_size"])
        if "bpe" in state:
            from tokenizers import Tokenizer as HFTokenizer

            tok._bpe = HFTokenizer.from_str(state["bpe"])
        return tok
