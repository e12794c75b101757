"""Contract checks for plugin authors: call them from your plugin's own tests.

    from seqkit.testing import check_datamodule, check_head, check_plugin

    def test_plugin():
        check_plugin(my_plugin.plugin)                   # hooks register valid classes

    def test_data():
        check_datamodule(MyData, num_train=64)           # spec, setup, collate, state, DDP shards

    def test_head():
        check_head(MyHead, MyData(num_train=64, loader={"batch_size": 8}))

Each check runs the object the way seqkit's CLI and Lightning will (one CPU process, a few tiny
steps) and raises :class:`ContractError` (an ``AssertionError``) naming the class, the check and
what was wrong, so pytest shows one readable failure. They mirror the contract in
``seqkit/head.py`` and ``seqkit/data.py``; what DDP needs (every parameter used in a training
step, equal batch counts on every rank) is checked here on one process, where it is cheap.

``check_head`` and ``check_datamodule`` are sequences of small ``_check_*`` functions, one per
named check, run in the order their docstrings list; each returns a :class:`ContractReport`.

:func:`isolated_registry` (and the ``seqkit_plugins`` pytest fixture) gives a plugin registry that
holds only the plugins you name, and puts the previous one back afterwards.

This module's ``__all__`` is public API, like ``seqkit.__all__``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import os
import json
import logging
import math
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import torch
from torch.nn.parameter import UninitializedParameter
from torch.utils.data import Subset

from seqkit import plugins as _plugins
from seqkit.data import SeqDataModule
from seqkit.head import STAGES, Head
from seqkit.lstm import LSTMStack
from seqkit.model import SequenceModel
from seqkit.spec import Batch, Spec

__all__ = ["ContractError", "ContractReport", "check_datamodule", "check_head", "check_plugin", "isolated_registry"]

DEFAULT_RNN = functools.partial(LSTMStack, hidden_size=16)
"""The recurrent stack ``check_head`` builds the model with unless told otherwise (small, fast)."""

_FORMATS = ("csv", "txt", "jsonl")


class ContractError(AssertionError):
    """A plugin class breaks seqkit's contract; the message names the class and the check."""


@dataclass
class ContractReport:
    """What a check verified (``passed``) and what did not apply to this class (``skipped``)."""

    name: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.name}: {len(self.passed)} checks passed"]
        lines += [f"  ok   {c}" for c in self.passed]
        lines += [f"  skip {c}: {why}" for c, why in self.skipped.items()]
        return "\n".join(lines)


class _Checker:
    def __init__(self, name: str) -> None:
        self.report = ContractReport(name)

    def fail(self, check: str, detail: str) -> None:
        raise ContractError(f"{self.report.name}: {check}: {detail}")

    def ok(self, check: str) -> None:
        self.report.passed.append(check)

    def skip(self, check: str, why: str) -> None:
        self.report.skipped[check] = why


# -- plugin registry ------------------------------------------------------------------------------
def _named(plugins) -> list[tuple[str, object]]:
    out = []
    for p in plugins:
        if isinstance(p, tuple):
            out.append(p)
        else:
            out.append((getattr(p, "__name__", type(p).__name__).rsplit(".", 1)[-1], p))
    return out


@contextmanager
def isolated_registry(*plugins: object, entry_points: bool = False) -> Iterator[_plugins.Registry]:
    """A plugin registry holding seqkit's built-ins and ``plugins`` (hook modules or objects, or
    ``(name, module)`` pairs), made the process-wide registry while the ``with`` block runs.

    With ``entry_points=True`` the installed plugins are loaded too (as the CLI does). Whatever
    registry was active before is put back on exit, so tests do not leak plugins into each other.
    """
    saved = _plugins._REGISTRY
    try:
        pm = _plugins.new_plugin_manager()
        registry = _plugins.Registry()
        from seqkit import __version__, _builtin

        pm.register(_builtin, name="seqkit")
        info = registry.plugins.setdefault("seqkit", _plugins.PluginInfo("seqkit", "seqkit", __version__))
        info.distribution, info.version = "seqkit", __version__
        for name, obj in _named(plugins):
            pm.register(obj, name=name)
        if entry_points:
            _plugins.load_entry_points(pm, registry)
        _plugins.collect(pm, registry)
        _plugins._REGISTRY = registry
        yield registry
    finally:
        _plugins._REGISTRY = saved


def check_plugin(plugin: object, name: str | None = None) -> _plugins.Registry:
    """Register ``plugin`` (its hook module) alone and check it registers at least one valid class.

    Registration validates each class (right base class, not abstract, importable by its path);
    returns the registry so a test can assert on ``registry.names("heads")``.
    """
    name = name or _named([plugin])[0][0]
    with isolated_registry((name, plugin)) as registry:
        info = registry.plugins.get(name)
        if info is None or not (info.heads or info.datamodules or info.encoders):
            raise ContractError(
                f"plugin {name!r}: registered no classes; implement seqkit_register_heads, "
                "seqkit_register_datamodules or seqkit_register_encoders with @seqkit.hookimpl"
            )
        return registry


# -- helpers --------------------------------------------------------------------------------------
@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Lightning's progress chatter while a check drives a Trainer."""
    loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _trainer(root: str, **kwargs):
    import lightning.pytorch as pl

    args = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, use_distributed_sampler=False,
                default_root_dir=root)
    args.update(kwargs)
    return pl.Trainer(**args)


def _first_batches(loader, n: int) -> list[Batch]:
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out


def _is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if _is_tensor(a) and _is_tensor(b):
        return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=tol, atol=tol)
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
        except (TypeError, ValueError):
            return False
    return a == b


def _spec_state(spec: Spec) -> dict:
    from seqkit.data import to_plain

    def norm(v):
        try:
            return to_plain(v)
        except Exception:  # noqa: BLE001 - a value with no plain form compares by type
            return type(v).__name__

    return {"type": type(spec).__name__, **{f.name: norm(getattr(spec, f.name)) for f in dataclasses.fields(spec)}}


def _garbage_padding(batch: Batch, spec: Spec) -> Batch | None:
    """``batch`` with every padded position (at or past its length) filled with random values
    (random token ids for token inputs): a head that honours ``lengths`` must not notice.
    None when the batch has no padding to fill."""
    x, lengths = batch.inputs, batch.lengths
    if not _is_tensor(x) or x.dim() < 2 or lengths is None:
        return None
    B, T = x.shape[:2]
    keep = torch.arange(T).unsqueeze(0) < lengths.cpu().unsqueeze(1)  # (B, T)
    if bool(keep.all()):
        return None
    g = torch.Generator().manual_seed(1234)
    if x.dtype in (torch.long, torch.int, torch.int32, torch.int64, torch.int16, torch.uint8):
        high = max(int(spec.input_size), int(x.max()) + 1, 2)
        noise = torch.randint(0, high, x.shape, generator=g, dtype=x.dtype)
    else:
        noise = torch.randn(x.shape, generator=g).to(x.dtype) * 3
    out = copy.copy(batch)
    out.inputs = torch.where(keep.view(B, T, *([1] * (x.dim() - 2))), x, noise)
    return out


def _padded_batch(data: SeqDataModule, batches: list[Batch]) -> Batch | None:
    """A validation batch with padding in it: one from ``batches``, or the shortest and longest
    validation examples collated together."""
    for b in batches:
        if b.lengths is not None and _is_tensor(b.inputs) and b.inputs.dim() >= 2 and int(b.lengths.min()) < b.inputs.shape[1]:
            return b
    ds, size = data.val_set, data.eval_batch_size
    lengths = getattr(ds, "lengths", None)
    if ds is None or lengths is None or len(ds) < 2:
        return None
    order = sorted(range(len(ds)), key=lambda i: lengths[i])
    picks = sorted(set(order[: max(1, size // 2)] + order[-max(1, size - size // 2):]))
    return data._collate_indexed([(i, ds[i]) for i in picks])


def _reset_metrics(head: Head) -> None:
    for stage in STAGES:
        m = head.metrics(stage)
        if m is not None:
            m.reset()


def _build(head_cls, spec, head_args, rnn, encoder, seed) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(head=functools.partial(head_cls, **head_args), rnn=rnn, encoder=encoder, spec=spec)


def _loss(model: SequenceModel, batch: Batch, stage: str) -> torch.Tensor:
    """The head's loss on ``batch``, as the model computes it in a step."""
    return model.head.loss(model.encode(batch), batch, stage, model.encode)


def _predict(model: SequenceModel, batch: Batch):
    if type(model.head).predict is Head.predict:
        return None
    return model.head.predict(model.encode(batch), batch, model.encode)


def _garbage_targets(batch: Batch, spec: Spec) -> Batch | None:
    """``batch`` with every padded target position filled with values that would change the loss
    if it were counted: past ``target_lengths`` for sequence targets, past ``lengths`` for
    per-step targets aligned with the inputs. None when the targets have no padding."""
    y = batch.targets
    if not _is_tensor(y) or y.dim() < 2:
        return None
    if batch.target_lengths is not None and batch.target_lengths.shape[0] == y.shape[0]:
        lengths = batch.target_lengths
    elif batch.lengths is not None and _is_tensor(batch.inputs) and batch.inputs.dim() >= 2 and y.shape[:2] == batch.inputs.shape[:2]:
        lengths = batch.lengths
    else:
        return None
    B, T = y.shape[:2]
    pad = torch.arange(T).unsqueeze(0) >= lengths.cpu().unsqueeze(1)  # (B, T)
    if not bool(pad.any()):
        return None
    g = torch.Generator().manual_seed(4321)
    if y.dtype.is_floating_point:
        noise = torch.randn(y.shape, generator=g).to(y.dtype) * 100
    else:
        high = max(int(spec.num_classes), int(spec.input_size), int(y.max()) + 1, 2)
        noise = torch.randint(0, high, y.shape, generator=g, dtype=y.dtype)
    out = copy.copy(batch)
    out.targets = torch.where(pad.view(B, T, *([1] * (y.dim() - 2))), noise, y)
    return out


# -- heads ----------------------------------------------------------------------------------------
# check_head runs these in order; each takes the checker and raises ContractError on the first
# problem it finds.
def _check_head_class(c: _Checker, head: type[Head]) -> str:
    """A Head subclass with a known prediction format; returns the format."""
    if not (isinstance(head, type) and issubclass(head, Head)):
        c.fail("class", f"{head!r} is not a subclass of seqkit.Head")
    fmt = getattr(head, "prediction_format", "csv")
    if fmt not in _FORMATS:
        c.fail("prediction_format", f"{fmt!r} is not one of {', '.join(_FORMATS)}")
    return fmt


def _head_batches(c: _Checker, data: SeqDataModule, seed: int) -> tuple[list[Batch], list[Batch]]:
    """Up to two training and two validation batches of ``data`` (set up for fitting)."""
    data.prepare_data()
    data.setup("fit")
    torch.manual_seed(seed)
    batches = _first_batches(data.train_dataloader(), 2)
    val_batches = _first_batches(data.val_dataloader(), 2)
    if not batches or not val_batches:
        c.fail("data", f"{type(data).__name__} gave no training or validation batches")
    return batches, val_batches


def _check_builds(c: _Checker, build: Callable[[int], SequenceModel], seed: int) -> SequenceModel:
    """The model builds from the spec, with every layer's size known (lazy layers break DDP)."""
    try:
        model = build(seed)
    except Exception as exc:  # noqa: BLE001 - report any construction failure as a contract failure
        c.fail("builds from spec", f"{type(exc).__name__}: {exc}")
    lazy = [n for n, p in model.named_parameters() if isinstance(p, UninitializedParameter)]
    if lazy:
        c.fail("builds from spec", f"uninitialized (lazy) parameters {lazy}: DDP cannot wrap them; size layers from the spec")
    c.ok("builds from spec")
    return model


def _check_train_step(c: _Checker, model: SequenceModel, batch: Batch) -> None:
    """A training step gives a finite scalar loss and a finite gradient for every parameter."""
    model.train()
    _reset_metrics(model.head)
    loss = _loss(model, batch, "train")
    if not _is_tensor(loss) or loss.dim() != 0:
        c.fail("train step", f"loss() must return a scalar tensor, got {type(loss).__name__} {getattr(loss, 'shape', '')}")
    if not torch.isfinite(loss):
        c.fail("train step", f"loss is {float(loss)}")
    if not loss.requires_grad:
        c.fail("train step", "loss does not require grad: nothing would be trained")
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    if unused:
        c.fail("all parameters used", f"no gradient for {unused}: under DDP this fails with 'Expected to have "
               "finished reduction'; build optional layers only when they are enabled")
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        c.fail("train step", f"non-finite gradients in {bad}")
    c.ok("train step: finite scalar loss")
    c.ok("all parameters used")
    model.zero_grad(set_to_none=True)


def _check_eval_steps(c: _Checker, model: SequenceModel, batch: Batch) -> None:
    """Validation and test steps give finite scalar losses, and the stage metrics compute finite values."""
    from torchmetrics import MetricCollection

    model.eval()
    for stage in ("val", "test"):
        metrics = model.head.metrics(stage)
        with torch.no_grad():
            value = _loss(model, batch, stage)
        if not _is_tensor(value) or value.dim() != 0 or not torch.isfinite(value):
            c.fail(f"{stage} step", f"expected a finite scalar loss, got {value!r}")
        if metrics is None:
            continue
        if not isinstance(metrics, MetricCollection):
            c.fail("metrics", f"metrics({stage!r}) must be a torchmetrics MetricCollection (use set_metrics)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            computed = metrics.compute()
        for k, v in computed.items():
            if _is_tensor(v) and not torch.isfinite(v.float()).all():
                c.fail(f"{stage} metrics", f"{k} is {v}")
    _reset_metrics(model.head)
    c.ok("val/test steps: finite loss and metrics")


def _check_predict_records(c: _Checker, model: SequenceModel, batch: Batch, fmt: str) -> None:
    """``predict`` gives one record per example (or several sharing its index, e.g. one per
    forecast step), each a JSON-serialisable dict with ``index`` = ``batch.index`` of its example."""
    with torch.no_grad():
        records = _predict(model, batch)
    if records is None:
        c.skip("predict records", "the head does not implement predict")
        return
    if not isinstance(records, list) or len(records) < batch.size:
        got = len(records) if isinstance(records, list) else type(records).__name__
        c.fail("predict records", f"expected a list of at least {batch.size} records (one or more per example), got {got}")
    idx = sorted({int(r["index"]) if isinstance(r, dict) and "index" in r else -1 for r in records})
    # several records per example (one per horizon step) may encode (example, step) in their
    # indices, so that the writer keeps them all in input order: only one per example is compared
    several = len(records) > batch.size
    if (-1 in idx) or (not several and idx != sorted(batch.index.tolist())):
        c.fail("predict records", "every record must be a dict with 'index' = batch.index of its example "
               "(start records with seqkit.records_for(batch))")
    for r in records:
        try:
            json.dumps(r)
        except TypeError as exc:
            c.fail("predict records", f"record {r.get('index')} is not JSON-serialisable ({exc}); convert tensors with float()/tolist()")
        if fmt == "txt" and "text" not in r:
            c.fail("predict records", "prediction_format 'txt' writes each record's 'text' field, which is missing")
    c.ok("predict: one record per example")


def _check_honours_lengths(c: _Checker, model: SequenceModel, data: SeqDataModule, val_batches: list[Batch],
                           tol: float) -> None:
    """Garbage in padded input positions changes neither the loss nor the predictions, and the
    shortest example predicted alone (no padding) gets the record it gets in a padded batch."""
    pbatch = _padded_batch(data, val_batches)
    noisy = _garbage_padding(pbatch, data.spec) if pbatch is not None else None
    if noisy is None:
        c.skip("honours lengths", "no validation batch with padding (inputs without lengths, or all one length)")
        return
    with torch.no_grad():
        ref_loss = _loss(model, pbatch, "val")
        new_loss = _loss(model, noisy, "val")
        ref_pred, new_pred = _predict(model, pbatch), _predict(model, noisy)
    _reset_metrics(model.head)
    if not _close(float(ref_loss), float(new_loss), tol):
        c.fail("honours lengths", f"the loss changed from {float(ref_loss):.6g} to {float(new_loss):.6g} when only "
               "padded positions changed: mask padding with batch.lengths (seqkit.length_mask)")
    if ref_pred is not None and not _close(ref_pred, new_pred, tol):
        c.fail("honours lengths", "predictions changed when only padded positions changed")
    if ref_pred is not None and data.val_set is not None:
        i = int(pbatch.index[int(pbatch.lengths.argmin())])
        with torch.no_grad():
            alone = _predict(model, data._collate_indexed([(i, data.val_set[i])]))
        in_batch = [r for r in ref_pred if int(r["index"]) == i]
        if not _close(alone, in_batch[:1], tol):
            c.fail("honours lengths", f"example {i} predicted alone gives {alone} but {in_batch[:1]} in a padded "
                   "batch: its prediction depends on the other sequences' lengths (mask with batch.lengths)")
    c.ok("honours lengths")


def _check_padded_targets(c: _Checker, model: SequenceModel, spec: Spec, batches: list[Batch], tol: float) -> None:
    """Padded target positions (past ``target_lengths``, or past ``lengths`` for per-step targets)
    filled with other values never change the loss."""
    for ref in batches:
        noisy = _garbage_targets(ref, spec)
        if noisy is not None:
            break
    else:
        c.skip("ignores padded targets", "no batch with padded sequence targets")
        return
    fix = ("mask the loss with batch.target_lengths (or batch.lengths for per-step targets); padding may "
           "hold any value")
    model.eval()
    with torch.no_grad():
        ref_loss = _loss(model, ref, "val")
        try:
            new_loss = _loss(model, noisy, "val")
        except Exception as exc:  # noqa: BLE001 - a loss that reads padded targets may also crash on them
            c.fail("ignores padded targets", f"the loss raised {type(exc).__name__} ({str(exc).splitlines()[0] if str(exc) else ''}) "
                   f"when only padded target positions changed: {fix}")
    _reset_metrics(model.head)
    if not _close(float(ref_loss), float(new_loss), tol):
        c.fail("ignores padded targets", f"the loss changed from {float(ref_loss):.6g} to {float(new_loss):.6g} when only "
               f"padded target positions changed: {fix}")
    c.ok("ignores padded targets")


def _check_metrics_reset(c: _Checker, build: Callable[[int], SequenceModel], data: SeqDataModule, root: str,
                         seed: int, tol: float):
    """A real Trainer resets the stage metrics at every epoch, and validating the same data twice
    logs the same values. Returns the trained model and its trainer."""
    import lightning.pytorch as pl

    seen: list[str] = []

    class _ResetCheck(pl.Callback):
        def _check(self, pl_module, stage: str) -> None:
            m = pl_module.head.metrics(stage)
            dirty = [k for k, v in (m.items() if m is not None else []) if getattr(v, "_update_count", 0)]
            if dirty:
                seen.append(f"{stage} metrics {dirty} still hold the last epoch's updates at epoch {pl_module.current_epoch}")

        def on_train_epoch_start(self, trainer, pl_module):
            self._check(pl_module, "train")

        def on_validation_epoch_start(self, trainer, pl_module):
            self._check(pl_module, "val")

    model = build(seed)
    trainer = _trainer(root, max_epochs=2, limit_train_batches=2, limit_val_batches=2, callbacks=[_ResetCheck()])
    trainer.fit(model, train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader())
    if seen:
        c.fail("metrics reset between epochs", "; ".join(seen))
    # values logged for one set must not depend on what was evaluated before
    val_set = data.val_set
    if val_set is not None and len(val_set) >= 2:
        half = len(val_set) // 2
        a = data.loader(Subset(val_set, range(half)), train=False)
        b = data.loader(Subset(val_set, range(half, len(val_set))), train=False)
        first = trainer.validate(model, dataloaders=b, verbose=False)[0]
        trainer.validate(model, dataloaders=a, verbose=False)
        again = trainer.validate(model, dataloaders=b, verbose=False)[0]
        if not _close(first, again, tol):
            c.fail("metrics reset between epochs", f"validating the same data twice gave {first} then {again}")
    c.ok("metrics reset between epochs")
    return model, trainer


def _check_checkpoint_round_trip(c: _Checker, model: SequenceModel, trainer, build: Callable[[int], SequenceModel],
                                 batch: Batch, root: str, seed: int, tol: float) -> None:
    """The weights survive a Lightning checkpoint (read with weights_only=True) with equal outputs."""
    path = f"{root}/head.ckpt"
    trainer.save_checkpoint(path, weights_only=False)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    fresh = build(seed + 1)
    try:
        fresh.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        c.fail("checkpoint round trip", str(exc).splitlines()[0])
    model.eval()
    fresh.eval()
    with torch.inference_mode():  # as Lightning validates: metric states were reset in inference mode
        l1, l2 = _loss(model, batch, "val"), _loss(fresh, batch, "val")
        p1, p2 = _predict(model, batch), _predict(fresh, batch)
    if not _close(float(l1), float(l2), tol) or not _close(p1, p2, tol):
        c.fail("checkpoint round trip", f"outputs differ after loading the checkpoint (loss {float(l1):.6g} vs {float(l2):.6g}): "
               "keep all state in parameters or buffers")
    c.ok("checkpoint round trip")


def check_head(
    head: type[Head],
    data: SeqDataModule,
    head_args: dict | None = None,
    rnn: Callable[[int], Any] | None = DEFAULT_RNN,
    encoder: Callable[[Spec], Any] | None = None,
    seed: int = 0,
    tol: float = 1e-4,
) -> ContractReport:
    """Check a head class against the contract, on batches of ``data`` (a data module instance).

    Builds ``SequenceModel(head, rnn, encoder)`` from the data's spec, then checks, in order:

    1. it builds with no lazy layers (``builds from spec``);
    2. a training step gives a finite scalar loss and a finite gradient for every parameter (an
       unused parameter fails under DDP);
    3. val/test steps give finite losses and metrics;
    4. ``predict`` gives JSON-serialisable records, each with ``index`` (one or more per example);
    5. padding never changes the loss or the predictions, and an example predicted alone gets the
       record it gets in a padded batch (``lengths`` are honoured);
    6. padded target positions never change the loss (``target_lengths`` are honoured);
    7. a real Trainer resets the stage metrics at every epoch;
    8. the weights survive a Lightning checkpoint round trip with identical outputs.

    Args:
        head: The Head subclass.
        data: A data module whose batches the head is meant for (tiny sizes keep this fast).
        head_args: ``init_args`` for the head, as in YAML.
        rnn: The recurrent stack (a callable taking the input size); None for heads with their own
            decoder (``rnn: null`` in YAML).
        encoder: The input encoder (a callable taking the spec); None for seqkit's default.
        seed: Seed for the weights and the data order.
        tol: Tolerance when comparing outputs.
    """
    c = _Checker(getattr(head, "__name__", repr(head)))
    fmt = _check_head_class(c, head)
    batches, val_batches = _head_batches(c, data, seed)
    spec = data.spec
    build = functools.partial(_build, head, spec, dict(head_args or {}), rnn, encoder)  # build(seed) -> model

    model = _check_builds(c, build, seed)
    _check_train_step(c, model, batches[0])
    _check_eval_steps(c, model, val_batches[0])
    _check_predict_records(c, model, val_batches[0], fmt)
    _check_honours_lengths(c, model, data, val_batches, tol)
    _check_padded_targets(c, model, spec, [*val_batches, *batches], tol)
    with tempfile.TemporaryDirectory(prefix="seqkit-check-") as root, _quiet():
        model, trainer = _check_metrics_reset(c, build, data, root, seed, tol)
        _check_checkpoint_round_trip(c, model, trainer, build, val_batches[0], root, seed, tol)
    return c.report


# -- data modules ---------------------------------------------------------------------------------
def _batch_shapes(c: _Checker, dm: SeqDataModule, batch: Batch, where: str) -> None:
    if not isinstance(batch, Batch):
        c.fail("collate", f"{where}: collate() must return a seqkit.Batch, got {type(batch).__name__}")
    spec = dm.spec
    if batch.lengths is None and batch.index is None:
        c.fail("collate", f"{where}: Batch has neither lengths nor index")
    B = batch.size
    if batch.index is None or tuple(batch.index.shape) != (B,):
        c.fail("collate", f"{where}: Batch.index must be a (B,) tensor (set by the base class loader; keep "
               "SeqDataModule.loader)")
    if _is_tensor(batch.inputs) and batch.inputs.shape[0] != B:
        c.fail("collate", f"{where}: inputs have batch size {batch.inputs.shape[0]} but lengths say {B}")
    if batch.lengths is not None:
        lengths = batch.lengths
        if tuple(lengths.shape) != (B,) or lengths.dtype not in (torch.long, torch.int, torch.int32):
            c.fail("collate", f"{where}: lengths must be a (B,) integer tensor, got {lengths.dtype} {tuple(lengths.shape)}")
        if _is_tensor(batch.inputs) and batch.inputs.dim() >= 2:
            T = batch.inputs.shape[1]
            if int(lengths.min()) < 1 or int(lengths.max()) > T:
                c.fail("collate", f"{where}: lengths must lie in 1..T={T}, got {lengths.tolist()}")
            if spec.input_kind == "tokens":
                x = batch.inputs
                if x.dtype != torch.long:
                    c.fail("collate", f"{where}: token inputs must be torch.long, got {x.dtype}")
                if int(x.min()) < 0 or int(x.max()) >= spec.input_size:
                    c.fail("collate", f"{where}: token ids must lie in 0..spec.input_size-1={spec.input_size - 1}")
                steps = torch.arange(T).unsqueeze(0)
                pad_area = x[steps >= lengths.unsqueeze(1)]
                if pad_area.numel() and not bool((pad_area == spec.pad_id).all()):
                    c.fail("collate", f"{where}: positions past lengths must hold spec.pad_id={spec.pad_id}")
    if batch.target_lengths is not None and _is_tensor(batch.targets):
        # sequence targets: one length per target row (several rows per example are allowed,
        # e.g. several reference captions per image)
        tl = batch.target_lengths
        if tl.dim() != 1 or tl.shape[0] != batch.targets.shape[0]:
            c.fail("collate", f"{where}: target_lengths must hold one length per row of targets")
        if batch.targets.dim() >= 2 and int(tl.max()) > batch.targets.shape[1]:
            c.fail("collate", f"{where}: target_lengths exceed the targets' time dimension")
    elif _is_tensor(batch.targets) and batch.targets.dim() > 0 and batch.targets.shape[0] != B:
        c.fail("collate", f"{where}: targets have batch size {batch.targets.shape[0]} but the batch has {B} examples")


def _shards(dm: SeqDataModule, make_loader: Callable[[], Any], world: int, epoch: int = 0) -> list[list[list[int]]]:
    """Indices of every batch each rank would get, by rank."""
    saved = dm.trainer
    per_rank = []
    try:
        for rank in range(world):
            dm.trainer = SimpleNamespace(world_size=world, global_rank=rank)
            loader = make_loader()
            for obj in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(epoch)
            per_rank.append([b.index.tolist() for b in loader])
    finally:
        dm.trainer = saved
    return per_rank


class _FitStateCalled(Exception):
    pass


@contextmanager
def _no_fit_state(dm: SeqDataModule) -> Iterator[None]:
    """While active, ``dm.fit_state()`` (which reads the training data) raises."""
    def refuse() -> None:
        raise _FitStateCalled()

    dm.fit_state = refuse
    try:
        yield
    finally:
        del dm.fit_state


def _check_predict_without_files(c: _Checker, factory, kwargs: dict, predict_kwargs: dict, state: dict,
                                 training_files: list[str]) -> None:
    """A fresh instance restored from ``state`` predicts while every training file is renamed away."""
    hidden = []
    try:
        for path in training_files:
            if os.path.exists(path):
                os.replace(path, path + ".seqkit-hidden")
                hidden.append(path)
        try:
            dm = factory(**{**kwargs, **predict_kwargs})
            dm.load_state_dict(state)
            with _no_fit_state(dm):
                dm.spec  # noqa: B018
                dm.setup("predict")
                batches = _first_batches(dm.predict_dataloader(), 1)
        except _FitStateCalled:
            c.fail("predicts without training files", "building the spec re-read the training data")
        except Exception as exc:  # noqa: BLE001 - any failure is the contract failure
            c.fail("predicts without training files", f"cannot predict from a checkpoint once its training files "
                   f"are deleted: {type(exc).__name__}: {exc}")
        if not batches:
            c.fail("predicts without training files", "the predict loader gave no batch")
    finally:
        for path in hidden:
            os.replace(path + ".seqkit-hidden", path)
    c.ok("predicts without training files")

# check_datamodule runs these in order.
def _check_datamodule_class(c: _Checker, dm: Any) -> None:
    """A SeqDataModule subclass whose fitted state is declared wherever fit_state() learns one."""
    if not isinstance(dm, SeqDataModule):
        c.fail("class", f"{type(dm).__name__} is not a subclass of seqkit.SeqDataModule")
    if not type(dm).fitted and type(dm).fit_state is not SeqDataModule.fit_state:
        c.fail("checkpointed state", "fit_state() is implemented but `fitted` declares nothing, so the base class "
               "never calls it and checkpoints hold no state: declare what it sets, e.g. fitted = "
               "{'vocab': Vocab, 'labels': list}")


def _check_spec(c: _Checker, dm: SeqDataModule) -> Spec:
    """The spec is a Spec with usable sizes."""
    spec = dm.spec
    if not isinstance(spec, Spec):
        c.fail("spec", f"build_spec() must return a seqkit.Spec, got {type(spec).__name__}")
    if spec.input_kind in ("tokens", "features") and spec.input_size <= 0:
        c.fail("spec", f"input_size must be > 0 for {spec.input_kind} inputs, got {spec.input_size}")
    if spec.input_kind == "tokens" and not 0 <= spec.pad_id < spec.input_size:
        c.fail("spec", f"pad_id {spec.pad_id} is not a valid token id (input_size {spec.input_size})")
    c.ok("spec")
    return spec


def _check_setup(c: _Checker, dm: SeqDataModule) -> None:
    """``setup("fit")`` fills non-empty, map-style train and val sets."""
    dm.setup("fit")
    for split in ("train_set", "val_set"):
        ds = getattr(dm, split)
        if ds is None or len(ds) == 0:
            c.fail("setup", f"setup('fit') left {split} empty")
        ds[0]  # noqa: B018 - map-style access must work
    c.ok("setup fills train_set and val_set")


def _check_collate(c: _Checker, dm: SeqDataModule) -> Batch:
    """Training and validation batches are Batches with consistent shapes; returns a val batch."""
    torch.manual_seed(0)
    train = _first_batches(dm.train_dataloader(), 2)
    val = _first_batches(dm.val_dataloader(), 1)
    for k, b in enumerate(train):
        _batch_shapes(c, dm, b, f"train batch {k}")
    _batch_shapes(c, dm, val[0], "val batch 0")
    c.ok("collate shapes")
    return val[0]


def _check_state_round_trip(c: _Checker, factory, kwargs: dict, dm: SeqDataModule, val_batch: Batch) -> dict:
    """``state_dict()`` is plain data (``torch.load(weights_only=True)``), and a fresh instance
    restored from it builds an equal spec WITHOUT calling ``fit_state()`` and encodes the data
    identically. Returns the state as a checkpoint would give it back."""
    state = dm.state_dict()
    buf = io.BytesIO()
    try:
        torch.save(state, buf)
        buf.seek(0)
        restored_state = torch.load(buf, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        c.fail("state_dict", f"cannot be saved in a checkpoint as plain tensors and primitives "
               f"(torch.load(weights_only=True)): {exc}")
    other = factory(**kwargs)
    other.load_state_dict(restored_state)
    try:
        with _no_fit_state(other):
            restored_spec = other.spec
    except _FitStateCalled:
        what = ("its checkpointed state is empty although its spec comes from the data" if not state else
                "restoring its checkpointed state still leaves fit_state() to read the training data")
        c.fail("checkpointed state", f"{what}: declare what fit_state() learns in `fitted`, or the model cannot be "
               "rebuilt from a checkpoint once the training files are gone")
    if _spec_state(restored_spec) != _spec_state(dm.spec):
        c.fail("state_dict round trip", "a data module restored from state_dict() builds a different spec")
    other.setup("fit")
    a, b = val_batch, _first_batches(other.val_dataloader(), 1)[0]
    if _is_tensor(a.inputs) and _is_tensor(b.inputs) and not torch.equal(a.inputs, b.inputs):
        c.fail("state_dict round trip", "a restored data module encodes the validation data differently")
    c.ok("state_dict round trip")
    return restored_state


def _check_ddp_sharding(c: _Checker, dm: SeqDataModule, world_sizes: tuple[int, ...]) -> None:
    """Under DDP every rank gets the same number of batches and the ranks together see every example."""
    for world in world_sizes:
        for name, make, ds in (("train", dm.train_dataloader, dm.train_set), ("val", dm.val_dataloader, dm.val_set)):
            shards = _shards(dm, make, world)
            counts = [len(s) for s in shards]
            if len(set(counts)) != 1:
                c.fail("DDP sharding", f"{world} ranks get {counts} {name} batches: a rank would wait forever at "
                       "the end of the epoch (use SeqDataModule.loader)")
            covered = {i for s in shards for b in s for i in b}
            if covered != set(range(len(ds))):
                c.fail("DDP sharding", f"{world} ranks together see {len(covered)} of {len(ds)} {name} examples")
    c.ok(f"DDP sharding: equal batch counts on {', '.join(map(str, world_sizes))} ranks")


def _check_reshuffle(c: _Checker, dm: SeqDataModule) -> None:
    """Training batches differ between epochs, unless the data is a stateful stream."""
    if dm.spec.stateful:
        c.skip("reshuffle per epoch", "a stateful stream (spec.stateful) keeps its batches in order")
    elif len(dm.train_set) > dm.batch_size:
        e0 = _shards(dm, dm.train_dataloader, 1, epoch=0)[0]
        e1 = _shards(dm, dm.train_dataloader, 1, epoch=1)[0]
        if e0 == e1:
            c.fail("reshuffle per epoch", "epoch 0 and epoch 1 see the same batches: the sampler ignores set_epoch")
        c.ok("reshuffle per epoch")
    else:
        c.skip("reshuffle per epoch", "the training set fits in one batch")


def check_datamodule(factory: Callable[..., SeqDataModule], /, world_sizes: tuple[int, ...] = (2, 3),
                     training_files: list[str] | None = None, predict_kwargs: dict | None = None,
                     **kwargs: Any) -> ContractReport:
    """Check a data module against the contract; ``factory(**kwargs)`` must build a fresh one
    (pass the class and small sizes: ``check_datamodule(MyData, num_train=64)``).

    Checks, in order:

    1. a ``fit_state()`` comes with a declared ``fitted`` state (otherwise it never runs and
       checkpoints hold nothing);
    2. the spec is a ``Spec`` with usable sizes;
    3. ``setup("fit")`` fills non-empty train and val sets;
    4. batches are ``Batch`` objects with consistent shapes (token ids in range, padding equal to
       ``spec.pad_id``, lengths within 1..T, one target length per target row);
    5. ``state_dict`` survives ``torch.save`` / ``torch.load(weights_only=True)``, and a fresh
       instance restored from it (as the CLI does from ``--ckpt_path``) builds an equal spec and
       encodes the data identically without calling ``fit_state()`` (so an empty checkpointed
       state for a spec that comes from data fails);
    6. with ``training_files`` (the paths in ``kwargs`` that hold training data), an instance
       built with ``kwargs`` plus ``predict_kwargs`` (pointing at prediction inputs) and restored
       from the state predicts while those files are renamed away;
    7. under DDP every rank gets the same number of batches and the ranks together cover every
       example;
    8. training batches are reshuffled each epoch (unless the data is a stateful stream,
       ``spec.stateful``, whose batches stay in order).
    """
    c = _Checker(getattr(factory, "__name__", type(factory).__name__))
    dm = factory(**kwargs)
    _check_datamodule_class(c, dm)
    dm.prepare_data()
    _check_spec(c, dm)
    _check_setup(c, dm)
    val_batch = _check_collate(c, dm)
    state = _check_state_round_trip(c, factory, kwargs, dm, val_batch)
    if training_files:
        _check_predict_without_files(c, factory, kwargs, predict_kwargs or {}, state, training_files)
    else:
        c.skip("predicts without training files", "no training_files given (generated data)")
    _check_ddp_sharding(c, dm, world_sizes)
    _check_reshuffle(c, dm)
    return c.report


# -- pytest fixture -------------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed to use the fixture
    pytest = None

if pytest is not None:

    @pytest.fixture
    def seqkit_plugins():
        """Make the registry hold only the plugins a test names: ``seqkit_plugins(my_hooks)``
        returns the registry; the previous registry is restored after the test.

        Import it into a test module or ``conftest.py``:
        ``from seqkit.testing import seqkit_plugins  # noqa: F401``.
        """
        stack = []

        def use(*plugins: object, entry_points: bool = False) -> _plugins.Registry:
            cm = isolated_registry(*plugins, entry_points=entry_points)
            registry = cm.__enter__()
            stack.append(cm)
            return registry

        yield use
        while stack:
            stack.pop().__exit__(None, None, None)

    __all__.append("seqkit_plugins")
