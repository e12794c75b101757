"""``seqkit.testing`` catches the bugs it is there to catch, and passes correct classes.

Each broken class below is a correct one (the built-in ``MarkerTaskData``, ``ManyToOneHead``,
``PerStepHead``) with one real mistake; its check must fail with a ``ContractError`` whose message
names the class, the check, and what to do. The correct classes pass the same checks, and so do the
head and data module of every task config in ``configs/`` (built as the config builds them).

Sizes are tiny: the failing checks stop at the first problem, before any Trainer runs.
"""

from __future__ import annotations

import functools
import importlib
import random
import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from conftest import CONFIGS
from seqkit import Batch, Examples, ManyToOneHead, PerStepHead, SeqDataModule, Spec, pad
from seqkit.marker import MarkerTaskData, generate_marker_task, read_tsv
from seqkit.testing import ContractError, check_datamodule, check_head, check_plugin

SMALL = dict(num_train=64, num_val=32, num_test=32, loader={"batch_size": 8})


@pytest.fixture
def tsv_dir(tmp_path):
    """train.tsv, val.tsv and test.tsv of the marker task, for MarkerTaskData(data_dir=...)."""
    for k, (split, n) in enumerate((("train", 64), ("val", 32), ("test", 32))):
        rows = generate_marker_task(n, num_symbols=4, min_len=5, max_len=12, seed=k)
        (tmp_path / f"{split}.tsv").write_text("".join(f"{label}\t{' '.join(toks)}\n" for label, toks in rows))
    return tmp_path


def _training_files(d) -> list[str]:
    return [str(d / "train.tsv"), str(d / "val.tsv")]


class TagData(SeqDataModule):
    """Per-step class targets: tag every token with its parity. Targets are (B, T) like the
    inputs and padded with 0, a valid class, so a loss that counts padding changes silently."""

    def __init__(self, num_train: int = 48, num_val: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sizes = {"train": num_train, "val": num_val, "test": num_val, "predict": num_val}

    def build_spec(self) -> Spec:
        return Spec(input_kind="tokens", input_size=6, pad_id=0, num_classes=2, labels=["even", "odd"])

    def dataset(self, split: str) -> Examples:
        rng = random.Random(f"{self.seed}-{split}")
        seqs = [[rng.randint(1, 5) for _ in range(rng.randint(2, 9))] for _ in range(self.sizes[split])]
        return Examples([(ids, [i % 2 for i in ids]) for ids in seqs])

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([ids for ids, _ in examples], value=0, dtype=torch.long)  # (B, T)
        targets, _ = pad([tags for _, tags in examples], value=0, dtype=torch.long)  # (B, T), padded with 0
        return Batch(inputs=inputs, lengths=lengths, targets=targets)


# -- correct classes pass -------------------------------------------------------------------------
def test_correct_classes_pass(tsv_dir):
    from seqkit_classify import plugin

    check_plugin(plugin, name="classify")
    report = check_datamodule(MarkerTaskData, **SMALL)
    assert "state_dict round trip" in report.passed, report
    report = check_datamodule(MarkerTaskData, data_dir=str(tsv_dir), training_files=_training_files(tsv_dir), **SMALL)
    assert "predicts without training files" in report.passed, report
    report = check_head(ManyToOneHead, MarkerTaskData(**SMALL), head_args={"pooling": "mean", "hidden_size": 8})
    for check in ("all parameters used", "honours lengths", "predict: one record per example",
                  "metrics reset between epochs", "checkpoint round trip"):
        assert check in report.passed, report
    report = check_head(PerStepHead, TagData(loader={"batch_size": 8}))
    assert "ignores padded targets" in report.passed, report


# -- the bugs of issue 12 -------------------------------------------------------------------------
class CountsPaddingHead(PerStepHead):
    """Averages the per-step loss over every position, padding included."""

    def loss(self, encoded, batch, stage, encode):
        return self.step_losses(self(encoded.outputs), batch.targets).mean()


def test_a_loss_that_counts_padded_targets_fails():
    with pytest.raises(ContractError, match=r"CountsPaddingHead: ignores padded targets: the loss changed from .* "
                                            r"when only padded target positions changed: mask the loss with "
                                            r"batch.target_lengths"):
        check_head(CountsPaddingHead, TagData(loader={"batch_size": 8}))


class EmptyStateData(MarkerTaskData):
    """A hand-written state_dict that saves nothing, although the vocabulary comes from the data."""

    def state_dict(self):
        return {}


class UndeclaredStateData(MarkerTaskData):
    """Learns its vocabulary in fit_state() but declares no fitted state."""

    fitted = {}


def test_empty_checkpointed_state_for_a_data_derived_spec_fails():
    with pytest.raises(ContractError, match=r"EmptyStateData: checkpointed state: its checkpointed state is empty "
                                            r"although its spec comes from the data: declare what fit_state\(\) learns"):
        check_datamodule(EmptyStateData, **SMALL)
    with pytest.raises(ContractError, match=r"UndeclaredStateData: checkpointed state: fit_state\(\) is implemented but "
                                            r"`fitted` declares nothing"):
        check_datamodule(UndeclaredStateData, **SMALL)


class ReReadsTrainData(MarkerTaskData):
    """Reads its training file again in build_spec (to count the training examples, say)."""

    def build_spec(self):
        self.num_examples = len(read_tsv(f"{self.data_dir}/train.tsv"))
        return super().build_spec()


def test_predicting_from_a_checkpoint_without_the_training_files_is_checked(tsv_dir):
    with pytest.raises(ContractError, match=r"ReReadsTrainData: predicts without training files: cannot predict from a "
                                            r"checkpoint once its training files are deleted: DataError: .*train.tsv"):
        check_datamodule(ReReadsTrainData, data_dir=str(tsv_dir), training_files=_training_files(tsv_dir), **SMALL)
    assert (tsv_dir / "train.tsv").exists(), "the check must put the training files back"


class NoIndexHead(ManyToOneHead):
    """Writes prediction records without their example's index."""

    def predict(self, encoded, batch, encode):
        return [{k: v for k, v in r.items() if k != "index"} for r in super().predict(encoded, batch, encode)]


def test_predict_records_without_index_fail():
    with pytest.raises(ContractError, match=r"NoIndexHead: predict records: every record must be a dict with 'index'"):
        check_head(NoIndexHead, MarkerTaskData(**SMALL))


# -- other mistakes the checks catch --------------------------------------------------------------
class UnusedLayerHead(ManyToOneHead):
    def __init__(self, spec, input_size):
        super().__init__(spec, input_size)
        self.never_used = nn.Linear(4, 4)  # an optional part left on: breaks DDP


class NoMaskHead(ManyToOneHead):
    def pool(self, encoded):
        return encoded.outputs.mean(1)  # averages padding in


class StrideShardData(MarkerTaskData):
    def train_dataloader(self):  # rank-strided shards of a home-made loader: unequal batch counts
        world, rank = self._world()
        items = [(i, self.train_set[i]) for i in range(rank, len(self.train_set), world)]
        return DataLoader(items, batch_size=self.batch_size, collate_fn=self._collate_indexed)


def test_other_broken_classes_fail():
    with pytest.raises(ContractError, match=r"UnusedLayerHead: all parameters used: .*never_used"):
        check_head(UnusedLayerHead, MarkerTaskData(**SMALL))
    with pytest.raises(ContractError, match=r"NoMaskHead: honours lengths"):
        check_head(NoMaskHead, MarkerTaskData(**SMALL))
    with pytest.raises(ContractError, match=r"StrideShardData: DDP sharding: 2 ranks get \[5, 4\] train batches"):
        check_datamodule(StrideShardData, num_train=65, num_val=32, loader={"batch_size": 8})


# -- every task config's head and data module pass ------------------------------------------------
def _task_configs() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        m = re.search(r"^# test-overrides:(.*)$", path.read_text(), flags=re.M)
        if m:
            found.append((str(path.relative_to(CONFIGS)), m.group(1).split()))
    return found


TASKS = _task_configs()


def _load(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _partial(ns):
    if ns is None:
        return None
    d = ns.as_dict()
    return functools.partial(_load(d["class_path"]), **(d.get("init_args") or {}))


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
@pytest.mark.parametrize("name,overrides", TASKS, ids=[n for n, _ in TASKS])
def test_every_task_config_passes_the_contract_checks(name, overrides):
    """The head and data module of every task config, built as the config builds them, pass
    seqkit.testing: equal DDP batch counts on 2 and 3 ranks, every parameter used in a training
    step (no unused-parameter errors under DDP), padding ignored, metrics reset, checkpoints."""
    from seqkit import plugins
    from seqkit.cli import SeqkitCLI

    plugins.get_registry()  # imports every plugin's classes, so YAML short names resolve (as `seqkit` does)
    cli = SeqkitCLI(args=["--config", str(CONFIGS / name), *overrides, "--trainer.logger=false"], run=False)
    data = cli.config.data.as_dict()
    data_args = dict(data.get("init_args") or {})
    data_args["loader"] = {**(data_args.get("loader") or {}), "batch_size": 8, "eval_batch_size": 8}
    data_cls = _load(data["class_path"])
    head = cli.config.model.head.as_dict()
    check_datamodule(data_cls, **data_args)
    report = check_head(_load(head["class_path"]), data_cls(**data_args), head_args=head.get("init_args") or {},
                        rnn=_partial(cli.config.model.rnn), encoder=_partial(cli.config.model.encoder))
    assert "all parameters used" in report.passed, report
