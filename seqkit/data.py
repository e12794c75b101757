"""The data-module contract and the data utilities every task shares: padding, a length-bucketed
batch sampler that is correct under DDP, and restoring a data module's vocabularies from a
checkpoint so that prediction needs nothing but the checkpoint."""

from __future__ import annotations

import contextvars
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Iterator

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from seqkit.errors import DataError
from seqkit.spec import Batch, Spec

# State a data module restores before it builds its spec (set by the CLI from --ckpt_path).
_RESTORE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("seqkit_datamodule_restore", default=None)


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
    ) -> None:
        # an int means "this many examples, lengths unknown": shuffled batches without bucketing
        self._lengths = None if isinstance(lengths, int) else list(lengths)
        self._n = lengths if isinstance(lengths, int) else len(self._lengths)
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
        batches = []
        for start in range(0, len(order), size * self.pool):
            part = order[start : start + size * self.pool]
            if self._lengths is not None:
                part.sort(key=lambda i: self._lengths[i])
            batches += [part[k : k + size] for k in range(0, len(part), size)]
        if self.drop and batches and len(batches[-1]) < size:
            batches.pop()
        if self.shuffle:
            batches = [batches[p] for p in torch.randperm(len(batches), generator=g).tolist()]
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


class _Indexed(Dataset):
    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return i, self.dataset[i]


class SeqDataModule(pl.LightningDataModule, ABC):
    """Base class of seqkit data modules.

    Subclasses implement ``build_spec`` (sizes and vocabularies, derived from the training data
    or from restored state), ``setup`` (fill ``train_set``/``val_set``/``test_set``/``predict_set``
    with map-style datasets) and ``collate`` (a list of examples to a :class:`Batch`). A dataset
    with a ``lengths`` attribute is batched by length. Vocabularies go in ``state_dict`` so that
    checkpoints carry them; ``load_state_dict`` restores them before ``build_spec`` runs.
    """

    def __init__(self, batch_size: int = 32, eval_batch_size: int | None = None, num_workers: int = 0, seed: int = 0) -> None:
        """
        Args:
            batch_size: Examples per training batch (per process under DDP).
            eval_batch_size: Examples per validation/test/predict batch (default: batch_size).
            num_workers: DataLoader worker processes.
            seed: Seed for data generation, splits and shuffling.
        """
        super().__init__()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.train_set = self.val_set = self.test_set = self.predict_set = None
        self._spec: Spec | None = None

    @property
    def spec(self) -> Spec:
        """The sizes and vocabularies the model is built from (linked into ``model.spec``)."""
        if self._spec is None:
            state = _RESTORE.get()
            if state is not None:
                self.load_state_dict(state)
            self._spec = self.build_spec()
        return self._spec

    @abstractmethod
    def build_spec(self) -> Spec:
        """Return the :class:`Spec` of this data; may read training data to build vocabularies."""

    @abstractmethod
    def collate(self, examples: list) -> Batch:
        """Pad a list of examples into a :class:`Batch`."""

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

    def loader(self, dataset, train: bool) -> DataLoader:
        """A DataLoader over ``dataset`` with length bucketing and DDP sharding."""
        if dataset is None:
            raise DataError(f"{type(self).__name__} has no data for this stage")
        replicas, rank = self._world()
        lengths = getattr(dataset, "lengths", None)
        sampler = LengthBucketSampler(
            len(dataset) if lengths is None else lengths,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
        )
        return DataLoader(
            _Indexed(dataset),
            batch_sampler=sampler,
            collate_fn=self._collate_indexed,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self.loader(self.train_set, train=True)

    def val_dataloader(self):
        return self.loader(self.val_set, train=False)

    def test_dataloader(self):
        return self.loader(self.test_set, train=False)

    def predict_dataloader(self):
        return self.loader(self.predict_set, train=False)
