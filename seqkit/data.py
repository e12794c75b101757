"""The data-module contract and the data utilities every task shares.

``SeqDataModule`` does the plumbing once, for every data module: the loader arguments (one
documented group, ``data.init_args.loader``), length-bucketed batches that are correct under DDP
(fairseq / OpenNMT-style bucketing), the ``setup()`` body, split-file checks with one message
style, and the fitted state (vocabularies, label sets, scalers, tokenizers) that a module declares
in ``fitted`` and the base class saves into checkpoints and restores from them, as plain tensors
and primitives (``torch.load(weights_only=True)`` reads them). A module restored from a checkpoint
never touches its training files: ``fit_state()`` (which reads them) runs only when nothing was
restored, and ``build_spec()`` reads the fitted state alone.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Literal, Optional

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from seqkit.errors import DataError
from seqkit.spec import Batch, Spec
from seqkit.ranges import NonNegativeInt, PositiveInt

OnBad = Literal["error", "skip"]
"""What a reader does with a malformed line or row: ``error`` stops with file and line, ``skip``
drops it and warns once with the count."""

SPLITS = ("train", "val", "test", "predict")


def pad(seqs: Sequence[Sequence[Any] | torch.Tensor], value: float | int = 0, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad variable-length sequences: returns ((B, T, ...) padded, (B,) lengths)."""
    tensors = [s if isinstance(s, torch.Tensor) else torch.as_tensor(s, dtype=dtype) for s in seqs]
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    T = int(lengths.max()) if len(tensors) else 0
    out = tensors[0].new_full((len(tensors), T, *tensors[0].shape[1:]), value)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    return out, lengths


def require_file(path: str | os.PathLike, what: str = "data file") -> str:
    """Return ``path`` as a string, or raise a DataError naming it when it does not exist."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"{what} not found: {path}")
    return path


class LengthBucketSampler:
    """Batches of indices of similar length, sharded across DDP ranks.

    ``lengths`` is one length per example, or the number of examples when lengths are unknown.
    Examples are shuffled (per epoch, from ``seed``), grouped into pools of ``pool`` batches,
    sorted by length inside each pool and cut into batches, so little padding is computed.

    Under DDP the sampler builds *global* batches of ``batch_size * num_replicas`` exactly as a
    single process with that batch size would, and gives each rank one contiguous slice of every
    global batch. So every rank gets the same number of batches (no rank waits at epoch end), and
    a run on N processes sees the same global batches as a run on one process with N times the
    batch size: their losses agree.
    """

    def __init__(
        self,
        lengths: Sequence[int] | int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        pool: int = 50,
        drop_last: bool = False,
        max_tokens: Optional[int] = None,
        sort: bool = True,
    ) -> None:
        # an int means "this many examples, lengths unknown": shuffled batches without bucketing
        self._lengths = None if isinstance(lengths, int) else list(lengths)
        self._n = lengths if isinstance(lengths, int) else len(self._lengths)
        if max_tokens is not None and self._lengths is None:
            raise DataError("data.init_args.loader.batch_type: tokens needs a dataset that knows its examples' lengths")
        self.max_tokens, self.sort = max_tokens, sort
        self._bs, self.shuffle, self.seed = batch_size, shuffle, seed
        self.num_replicas, self.rank, self.pool, self.drop = num_replicas, rank, pool, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch so the shuffle differs between epochs."""
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """This epoch's batches of ``batch_size * num_replicas`` indices, identical on every rank."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self._n, generator=g).tolist() if self.shuffle else list(range(self._n))
        size = self._bs * self.num_replicas
        if self.max_tokens is not None:  # as many examples as fit max_tokens padded tokens per process
            mean = max(1.0, sum(self._lengths) / max(1, self._n))
            size = max(self.num_replicas, int(self.max_tokens * self.num_replicas / mean))  # examples per pool slot
        batches = []
        for start in range(0, len(order), size * self.pool):
            part = order[start : start + size * self.pool]
            if self._lengths is not None and self.sort:
                part.sort(key=lambda i: self._lengths[i])
            if self.max_tokens is None:
                batches += [part[k : k + size] for k in range(0, len(part), size)]
            else:
                batches += self._token_batches(part)
        if self.drop and batches and len(batches[-1]) < (size if self.max_tokens is None else self.num_replicas):
            batches.pop()
        if self.shuffle:
            batches = [batches[p] for p in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def _token_batches(self, part: list[int]) -> list[list[int]]:
        """Cut ``part`` into global batches whose padded size (examples x longest length) stays
        within ``max_tokens`` per process; a longer example gets a batch to itself (per process)."""
        R, budget = self.num_replicas, self.max_tokens * self.num_replicas
        batches, current, longest = [], [], 0
        for i in part:
            n = max(1, self._lengths[i])
            if current and len(current) >= R and (len(current) + 1) * max(longest, n) > budget:
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, n)
        if current:
            batches.append(current)
        return batches

    def _batches(self) -> list[list[int]]:
        R, r = self.num_replicas, self.rank
        out = []
        for batch in self.global_batches():
            if R > 1:
                if len(batch) < R:  # too few examples for every rank: repeat some (writers dedupe)
                    batch = (batch * R)[:R]
                k, m = divmod(len(batch), R)
                start = r * k + min(r, m)
                batch = batch[start : start + k + (1 if r < m else 0)]
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


@dataclass
class Loader:
    """How examples are batched: ``data.init_args.loader`` in YAML.

    Args:
        batch_size: Examples per training batch (per process under DDP).
        eval_batch_size: Examples per validation/test/predict batch (default: batch_size).
        num_workers: DataLoader worker processes.
        bucket: Batch examples of similar length together (fewer padded steps to compute);
            false: random batches.
        pool: With bucket, examples are sorted by length inside pools of this many batches, so
            batches stay random across pools.
        drop_last: Drop the last, smaller training batch.
        batch_type: "sents": batch_size and eval_batch_size count examples; "tokens": they count
            padded tokens per process (examples x the longest example's length, the length
            being the data module's, e.g. source + target tokens for translation), so short
            examples come in large batches and long ones in small batches (OpenNMT-py's
            batch_type: tokens). Needs data whose examples know their lengths.
    """

    batch_size: PositiveInt = 32
    eval_batch_size: Optional[PositiveInt] = None
    num_workers: NonNegativeInt = 0
    bucket: bool = True
    pool: PositiveInt = 50
    drop_last: bool = False
    batch_type: Literal["sents", "tokens"] = "sents"

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.eval_batch_size is not None and self.eval_batch_size < 1):
            raise DataError(f"data.init_args.loader.batch_size and eval_batch_size must be >= 1 "
                            f"(got {self.batch_size} and {self.eval_batch_size})")
        if self.num_workers < 0 or self.pool < 1:
            raise DataError(f"data.init_args.loader: num_workers must be >= 0 and pool >= 1 "
                            f"(got {self.num_workers} and {self.pool})")


class Examples(Dataset):
    """A map-style dataset over a list of examples, with one length per example for bucketing
    (``lengths``: given, or ``len(example[0])`` of tuple examples, or ``len(example)``)."""

    def __init__(self, items: Sequence[Any], lengths: Optional[Sequence[int]] = None) -> None:
        self.items = list(items)
        if lengths is None:
            lengths = [len(x[0]) if isinstance(x, tuple) else len(x) for x in self.items]
        self.lengths = list(lengths)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


class _Indexed(Dataset):
    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return i, self.dataset[i]


def to_plain(value: Any, where: str = "state") -> Any:
    """``value`` as plain tensors and primitives (what ``torch.load(weights_only=True)`` reads):
    objects with ``state_dict()`` give it, numpy arrays become tensors, tuples lists."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if hasattr(value, "state_dict") and callable(value.state_dict):
        return to_plain(value.state_dict(), where)
    if isinstance(value, dict):
        return {str(k): to_plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    module = type(value).__module__
    if module == "numpy":
        import numpy as np

        return torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value.item()
    raise DataError(f"{where}: {type(value).__name__} cannot be saved in a checkpoint as plain data; give the "
                    "fitted type state_dict() and from_state(), or store lists, numbers and strings")


def from_plain(value: Any, kind: Any) -> Any:
    """Undo :func:`to_plain` for a value declared of type ``kind`` in ``SeqDataModule.fitted``."""
    if value is None:
        return None
    if hasattr(kind, "from_state"):
        return kind.from_state(value)
    if getattr(kind, "__module__", "") == "numpy":
        import numpy as np

        return np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
    if kind is tuple:
        return tuple(value)
    return value


class SeqDataModule(pl.LightningDataModule, ABC):
    """Base class of seqkit data modules.

    A subclass declares what it learns from its training data in ``fitted`` and implements:

    - ``fit_state()``: read the training data and set the ``fitted`` attributes (runs only when
      they were not restored from a checkpoint);
    - ``build_spec()``: the :class:`Spec` (or the plugin's subclass), from the fitted state alone;
    - ``dataset(split)``: a map-style dataset for "train", "val", "test" or "predict" (one with a
      ``lengths`` attribute, such as :class:`Examples`, is batched by length);
    - ``collate(examples)``: a list of examples to a :class:`Batch`.

    Pass ``**kwargs`` on to ``super().__init__`` so the shared arguments (``loader``, ``seed``)
    show in ``--help`` under the subclass.
    """

    spec_type: ClassVar[type] = Spec
    """The spec class ``build_spec`` returns (heads declare the one they read)."""
    fitted: ClassVar[dict[str, Any]] = {}
    """The fitted state: attribute name -> its type (``Vocab``, ``Tokenizer``, ``list``, ``dict``,
    ``float``, ``numpy.ndarray``...). The base class saves these attributes into checkpoints and
    restores them; a type with ``from_state`` is rebuilt with it."""

    def __init__(self, loader: Loader = Loader(), seed: int = 0) -> None:
        """
        Args:
            loader: How examples are batched (batch sizes, workers, length bucketing).
            seed: Seed for data generation, splits and shuffling.
        """
        super().__init__()
        if isinstance(loader, dict):
            loader = Loader(**loader)
        self.loader_args = loader
        self.seed = seed
        self.train_set = self.val_set = self.test_set = self.predict_set = None
        self._spec: Optional[Spec] = None
        for name in self.fitted:
            if not hasattr(self, name):
                setattr(self, name, None)

    @property
    def batch_size(self) -> int:
        return self.loader_args.batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.loader_args.eval_batch_size or self.loader_args.batch_size

    # -- fitted state and spec ------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether every ``fitted`` attribute holds a value (learned, or restored)."""
        return all(getattr(self, name, None) is not None for name in self.fitted)

    def fit_state(self) -> None:
        """Learn the ``fitted`` attributes from the training data (vocabularies, labels, scalers).
        Runs once, only when they were not restored from a checkpoint."""

    @property
    def spec(self) -> Spec:
        """The sizes and vocabularies the model is built from (linked into ``model.spec``)."""
        if self._spec is None:
            if not self.is_fitted:
                self.fit_state()
            spec = self.build_spec()
            if not isinstance(spec, self.spec_type):
                raise DataError(f"{type(self).__name__}.build_spec() returned a {type(spec).__name__}, "
                                f"but its spec_type is {self.spec_type.__name__}")
            spec.source = type(self).__name__
            self._spec = spec
        return self._spec

    @abstractmethod
    def build_spec(self) -> Spec:
        """Return the :class:`Spec` of this data, from the fitted state alone."""

    def state_dict(self) -> dict[str, Any]:
        """The fitted state as plain tensors and primitives (empty until it is fitted)."""
        if not self.fitted or not self.is_fitted:
            return {}
        return {name: to_plain(getattr(self, name), f"{type(self).__name__}.{name}") for name in self.fitted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the fitted state saved by :meth:`state_dict` (from a checkpoint)."""
        if not state:
            return
        missing = [name for name in self.fitted if name not in state]
        if missing:
            raise DataError(f"this checkpoint's {type(self).__name__} state lacks {', '.join(missing)}: it was "
                            "saved by another version of the data module, or for another task")
        for name, kind in self.fitted.items():
            setattr(self, name, from_plain(state[name], kind))
        self._spec = None

    # -- datasets ---------------------------------------------------------------------------------
    def dataset(self, split: str) -> Dataset:
        """The map-style dataset of ``split`` ("train", "val", "test" or "predict")."""
        raise DataError(f"{type(self).__name__} has no {split} data")

    def setup(self, stage: str) -> None:
        """Build the datasets the stage needs (the spec first: it may fit the vocabularies)."""
        self.spec  # noqa: B018 - fits the state if it was not restored
        if stage == "fit":
            self.train_set = self.dataset("train")
        if stage in ("fit", "validate"):
            self.val_set = self.dataset("val")
        if stage == "test":
            self.test_set = self.dataset("test")
        if stage == "predict":
            self.predict_set = self.dataset("predict")

    def split_file(self, key: str, path: Optional[str] = None) -> str:
        """The path in the argument ``key`` (e.g. ``train_file``), checked to exist: a DataError
        names the YAML key and the path otherwise."""
        path = getattr(self, key, None) if path is None else path
        if path is None:
            raise DataError(f"data.init_args.{key} is not set")
        path = os.fspath(path)
        if not os.path.exists(path):
            raise DataError(f"data.init_args.{key}: file not found: {path}")
        return path

    @abstractmethod
    def collate(self, examples: list) -> Batch:
        """Pad a list of examples into a :class:`Batch`."""

    def augment(self, examples: list) -> list:
        """Random changes to a training batch's examples, before ``collate``: only the training
        loader calls it, so validation, test and predict never see them. The default changes
        nothing; the video and captioning modules apply their ``augment`` options here."""
        return examples

    # -- loaders -----------------------------------------------------------------------------
    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _collate_indexed(self, items: list) -> Batch:
        batch = self.collate([ex for _, ex in items])
        batch.index = torch.tensor([i for i, _ in items], dtype=torch.long)
        return batch

    def _collate_train(self, items: list) -> Batch:
        batch = self.collate(self.augment([ex for _, ex in items]))
        batch.index = torch.tensor([i for i, _ in items], dtype=torch.long)
        return batch

    def loader(self, dataset, train: bool, shuffle: Optional[bool] = None) -> DataLoader:
        """A DataLoader over ``dataset`` with length bucketing and DDP sharding."""
        if dataset is None:
            raise DataError(f"{type(self).__name__} has no data for this stage")
        replicas, rank = self._world()
        args = self.loader_args
        tokens = args.batch_type == "tokens"
        lengths = getattr(dataset, "lengths", None) if args.bucket or tokens else None
        size = self.batch_size if train else self.eval_batch_size
        sampler = LengthBucketSampler(
            len(dataset) if lengths is None else lengths,
            batch_size=size,
            shuffle=train if shuffle is None else shuffle,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
            pool=args.pool,
            drop_last=train and args.drop_last,
            max_tokens=size if tokens else None,
            sort=args.bucket,
        )
        return DataLoader(
            _Indexed(dataset),
            batch_sampler=sampler,
            collate_fn=self._collate_train if train else self._collate_indexed,
            num_workers=args.num_workers,
            persistent_workers=args.num_workers > 0,
        )

    def train_dataloader(self):
        # a stateful stream's rows continue each other from batch to batch: keep them in order
        return self.loader(self.train_set, train=True, shuffle=False if self.spec.stateful else None)

    def val_dataloader(self):
        return self.loader(self.val_set, train=False)

    def test_dataloader(self):
        return self.loader(self.test_set, train=False)

    def predict_dataloader(self):
        return self.loader(self.predict_set, train=False)
