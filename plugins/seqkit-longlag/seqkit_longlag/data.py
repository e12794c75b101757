"""Data modules of the long-time-lag tasks: generated and seeded, nothing to download.

Every example is drawn from its own ``random.Random`` seeded by (task, seed, split, index), so the
sets cost no memory, are identical in every process (DDP) and on every run, and the training set
can be as large as a budget of sequences (the paper counts training sequences, each fresh).
Each module gives a :class:`~seqkit_longlag.spec.LongLagSpec` with the paper's success criterion
for the heads of this plugin (``LongLagEndHead``, ``LongLagStepHead``). Nothing is fitted, so the
checkpointed state is empty and predict (on the test split) needs no files at all.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Literal

import torch
from torch.utils.data import Dataset

from seqkit import Batch, DataError, SeqDataModule, StreamChunks, pad
from seqkit_longlag.generators import (
    REBER_SYMBOLS,
    TEMPORAL_ORDER_CLASSES,
    TEMPORAL_ORDER_SYMBOLS,
    adding_example,
    copy_example,
    embedded_reber_example,
    embedded_reber_stream,
    temporal_order_example,
)
from seqkit_longlag.spec import LongLagSpec

SPLITS = ("train", "val", "test")
PAD = "<pad>"


class Generated(Dataset):
    """``n`` examples, example ``i`` made by ``make(random.Random(f"{name}:{seed}:{split}:{i}"))``.

    Made on demand rather than held as ``seqkit.Examples``: a budget of 160,000 training
    sequences of 100+ steps would otherwise sit in memory, in every DDP process."""

    def __init__(self, make: Callable[[random.Random], Any], n: int, name: str, seed: int, split: str) -> None:
        self.make, self.n, self.key = make, n, f"{name}:{seed}:{split}"

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.make(random.Random(f"{self.key}:{i}"))


class _LongLagData(SeqDataModule):
    """Shared parts: split sizes, the generated splits, predict on the test split."""

    name = "longlag"
    spec_type = LongLagSpec

    def _set_sizes(self, num_train: int, num_val: int, num_test: int) -> None:
        for key, n in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if n < 1:
                raise DataError(f"data.init_args.{key} must be >= 1, got {n}")
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    def make_example(self, rng: random.Random):
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        split = "test" if split == "predict" else split  # predict: the test sequences
        return Generated(self.make_example, self.sizes[split], self.name, self.seed, split)


# -- experiment 4 ----------------------------------------------------------------------------------


class AddingProblemData(_LongLagData):
    """The adding problem (Hochreiter & Schmidhuber 1997, experiment 4).

    Each step is a pair (value in [-1, 1], marker in {-1, 0, 1}); exactly two pairs are marked,
    one among the first 10 and one among the first T/2 - 1, and the target at the end is
    0.5 + (X1 + X2) / 4. A sequence is processed correctly when the absolute error at its end is
    below ``tolerance``; the task is solved when every sequence of the evaluation set is.
    """

    name = "adding"

    def __init__(
        self,
        seq_len: int = 100,
        tolerance: float = 0.04,
        num_train: int = 100_000,
        num_val: int = 2560,
        num_test: int = 2560,
        **kwargs,
    ) -> None:
        """
        Args:
            seq_len: The minimal sequence length T; lengths are drawn from [T, T + T/10]. The
                paper reports T = 100, 500 and 1000.
            tolerance: A sequence is correct when the absolute error at its end is below this
                (0.04 in the paper).
            num_train: Training sequences per epoch, each one fresh (the paper's unit of cost).
            num_val: Validation sequences (the criterion is checked on them while training).
            num_test: Test sequences (2560 in the paper); predict runs on them.
        """
        super().__init__(**kwargs)
        self._set_sizes(num_train, num_val, num_test)
        if seq_len < 22:
            raise DataError(f"data.init_args.seq_len must be >= 22 (the second mark is among the first T/2 - 1 pairs), got {seq_len}")
        self.seq_len, self.tolerance = seq_len, tolerance

    def build_spec(self) -> LongLagSpec:
        return LongLagSpec(input_kind="features", input_size=2, num_targets=1, task="adding", seq_len=self.seq_len,
                           criterion="abs_error", tolerance=self.tolerance)

    def make_example(self, rng: random.Random):
        values, markers, target = adding_example(rng, self.seq_len)
        return torch.tensor([values, markers], dtype=torch.float32).T, target  # (L, 2)

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([x for x, _ in examples], value=0.0)  # (B, T, 2)
        targets = torch.tensor([[y] for _, y in examples], dtype=torch.float32)  # (B, 1)
        return Batch(inputs=inputs, lengths=lengths, targets=targets)


# -- shared by the symbolic tasks -------------------------------------------------------------------


class _SymbolData(_LongLagData):
    """Token inputs over a fixed alphabet (id 0 is padding), one-hot in the paper."""

    symbols: list[str] = []

    def token_ids(self, symbols) -> torch.Tensor:
        index = {s: i + 1 for i, s in enumerate(self.symbols)}
        return torch.tensor([index[s] for s in symbols], dtype=torch.long)


# -- experiments 6a and 6b ---------------------------------------------------------------------------


class TemporalOrderData(_SymbolData):
    """Temporal order (Hochreiter & Schmidhuber 1997, experiments 6a and 6b).

    Sequences of 100-110 symbols start with E and end with B; the rest are random a-d but for two
    (6a) or three (6b) widely separated X or Y. The class (4 or 8) is the order of the Xs and Ys.
    A sequence is correct when every output unit (softmax) is within ``tolerance`` of its target.
    """

    name = "temporal_order"
    symbols = TEMPORAL_ORDER_SYMBOLS

    def __init__(
        self,
        variant: Literal["6a", "6b"] = "6a",
        tolerance: float = 0.3,
        num_train: int = 50_000,
        num_val: int = 2560,
        num_test: int = 2560,
        **kwargs,
    ) -> None:
        """
        Args:
            variant: "6a": two relevant symbols, 4 classes; "6b": three relevant symbols, 8 classes.
            tolerance: A sequence is correct when every output unit is within this of its target
                (0.3 in the paper).
            num_train: Training sequences per epoch, each one fresh.
            num_val: Validation sequences.
            num_test: Test sequences; predict runs on them.
        """
        super().__init__(**kwargs)
        self._set_sizes(num_train, num_val, num_test)
        if variant not in ("6a", "6b"):
            raise DataError(f"data.init_args.variant must be '6a' or '6b', got {variant!r}")
        self.variant, self.tolerance = variant, tolerance
        self.num_relevant = 2 if variant == "6a" else 3
        self.name = f"temporal_order_{variant}"

    def build_spec(self) -> LongLagSpec:
        labels = TEMPORAL_ORDER_CLASSES[self.num_relevant]
        return LongLagSpec(input_kind="tokens", input_size=len(self.symbols) + 1, pad_id=0, num_classes=len(labels),
                           labels=list(labels), vocabs={"tokens": [PAD, *self.symbols]},
                           task=f"temporal_order_{self.variant}", criterion="output_error", tolerance=self.tolerance)

    def make_example(self, rng: random.Random):
        symbols, label = temporal_order_example(rng, self.num_relevant)
        return self.token_ids(symbols), label

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([x for x, _ in examples], value=0)
        return Batch(inputs=inputs, lengths=lengths, targets=torch.tensor([y for _, y in examples], dtype=torch.long))


# -- experiment 1 ---------------------------------------------------------------------------------------


class EmbeddedReberData(_SymbolData):
    """The embedded Reber grammar (Hochreiter & Schmidhuber 1997, experiment 1).

    Read a string one symbol at a time and predict the set of possible next symbols. The symbol
    before the last repeats the second one, so the net must carry it across the inner string. A
    string is processed correctly when, at every step, the possible next symbols are the most
    active outputs; the paper trains on 256 strings and tests on 256 others.

    With ``stream: true`` the strings follow each other with no reset (the continual task of
    Gers et al. 2000) and are served as a stateful stream (``spec.stateful``): ``batch_size``
    parallel rows per process cut into chunks of ``chunk_len`` steps, each batch continuing the
    previous one row by row, in order, in every split (so evaluation batches have
    ``batch_size`` rows too). Train it with ``model.tbptt_steps`` or as it is: the model carries
    the state from batch to batch.
    """

    name = "reber"
    symbols = REBER_SYMBOLS

    def __init__(
        self,
        num_train: int = 256,
        num_val: int = 256,
        num_test: int = 256,
        stream: bool = False,
        chunk_len: int = 50,
        **kwargs,
    ) -> None:
        """
        Args:
            num_train: Training strings (256 in the paper); in a stream, strings per epoch.
            num_val: Validation strings.
            num_test: Test strings; predict runs on them.
            stream: Concatenate the strings into stateful streams (see above); loader.batch_size
                is then the number of rows per process, in every split.
            chunk_len: In a stream, steps per chunk (one batch covers chunk_len steps of every row).
        """
        super().__init__(**kwargs)
        self._set_sizes(num_train, num_val, num_test)
        if stream and chunk_len < 1:
            raise DataError(f"data.init_args.chunk_len must be >= 1, got {chunk_len}")
        self.stream, self.chunk_len = stream, chunk_len

    @property
    def eval_batch_size(self) -> int:
        # every batch of a stream has the same rows, in evaluation too
        return self.batch_size if self.stream else super().eval_batch_size

    def build_spec(self) -> LongLagSpec:
        return LongLagSpec(input_kind="tokens", input_size=len(self.symbols) + 1, pad_id=0, num_classes=len(self.symbols),
                           vocabs={"tokens": [PAD, *self.symbols]}, stateful=self.stream, task="embedded_reber",
                           criterion="next_symbols", output_symbols=list(self.symbols))

    def _targets(self, nexts: list[set[str]]) -> torch.Tensor:
        out = torch.zeros(len(nexts), len(self.symbols))  # (L, C) multi-hot
        for t, allowed in enumerate(nexts):
            for s in allowed:
                out[t, self.symbols.index(s)] = 1.0
        return out

    def make_example(self, rng: random.Random):
        symbols, nexts = embedded_reber_example(rng)
        return self.token_ids(symbols[:-1]), self._targets(nexts)  # the final E has nothing to predict

    def dataset(self, split: str) -> Dataset:
        if not self.stream:
            return super().dataset(split)
        split = "test" if split == "predict" else split
        symbols, nexts = embedded_reber_stream(random.Random(f"{self.name}-stream:{self.seed}:{split}"), self.sizes[split])
        trainer = getattr(self, "trainer", None)
        world = trainer.world_size if trainer is not None else 1
        return StreamChunks([{"inputs": self.token_ids(symbols), "targets": self._targets(nexts)}],
                            rows=self.batch_size * world, chunk_len=self.chunk_len)

    def collate(self, examples: list) -> Batch:
        if isinstance(examples[0], dict):
            inputs = torch.stack([ex["inputs"] for ex in examples])  # (B, chunk_len)
            targets = torch.stack([ex["targets"] for ex in examples])  # (B, chunk_len, C)
            return Batch(inputs=inputs, lengths=torch.full((len(examples),), inputs.shape[1]), targets=targets)
        inputs, lengths = pad([x for x, _ in examples], value=0)
        targets, _ = pad([y for _, y in examples], value=0.0)  # (B, T, C)
        return Batch(inputs=inputs, lengths=lengths, targets=targets)


# -- the copy task ------------------------------------------------------------------------------------------


class CopyMemoryData(_SymbolData):
    """The copying-memory problem (Arjovsky et al. 2016; after Hochreiter & Schmidhuber 1997).

    Ten symbols from 1..8, ``delay - 1`` blanks, a delimiter, ten blanks; the net must output
    blanks, then repeat the ten symbols after the delimiter. A sequence is correct when every
    step's most likely output is right.
    """

    name = "copy"

    def __init__(
        self,
        delay: int = 100,
        num_copy: int = 10,
        num_symbols: int = 8,
        num_train: int = 50_000,
        num_val: int = 1000,
        num_test: int = 1000,
        **kwargs,
    ) -> None:
        """
        Args:
            delay: Steps between the last symbol to remember and the delimiter, plus one (T).
            num_copy: Symbols to remember and copy.
            num_symbols: Size of the alphabet they are drawn from.
            num_train: Training sequences per epoch, each one fresh.
            num_val: Validation sequences.
            num_test: Test sequences; predict runs on them.
        """
        super().__init__(**kwargs)
        self._set_sizes(num_train, num_val, num_test)
        if delay < 1 or num_copy < 1 or num_symbols < 2:
            raise DataError(f"data.init_args.delay and num_copy must be >= 1 and num_symbols >= 2 (got {delay}, {num_copy}, {num_symbols})")
        self.delay, self.num_copy, self.num_symbols = delay, num_copy, num_symbols
        # "_" blank, "1".."n" the symbols, ":" the delimiter
        self.symbols = ["_", *(str(k) for k in range(1, num_symbols + 1)), ":"]

    def build_spec(self) -> LongLagSpec:
        return LongLagSpec(input_kind="tokens", input_size=len(self.symbols) + 1, pad_id=0, num_classes=self.num_symbols + 1,
                           vocabs={"tokens": [PAD, *self.symbols]}, task="copy", criterion="argmax",
                           output_symbols=self.symbols[:-1],
                           memoryless_loss=self.num_copy * math.log(self.num_symbols) / (self.delay + 2 * self.num_copy))

    def make_example(self, rng: random.Random):
        inputs, targets = copy_example(rng, self.delay, self.num_copy, self.num_symbols)
        return torch.tensor(inputs, dtype=torch.long) + 1, torch.tensor(targets, dtype=torch.long)

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([x for x, _ in examples], value=0)
        targets, _ = pad([y for _, y in examples], value=0)
        return Batch(inputs=inputs, lengths=lengths, targets=targets)
