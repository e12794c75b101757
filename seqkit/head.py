"""The task-head contract: a head reads what the model encoded and owns its loss, its metrics (one
torchmetrics collection per stage) and, where it applies, decoding.

A head never receives the LightningModule. ``SequenceModel`` runs encoder -> recurrent stack and
hands the head an :class:`~seqkit.spec.Encoded`; a head that must run the encoder again (a
recursive forecast feeding its own outputs back, a sliding window over a long clip) is given the
model's ``encode`` function as an explicit argument.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Literal, Optional, Union

import torch
from torch import nn
from torchmetrics import MetricCollection

from seqkit.errors import SeqkitError
from seqkit.spec import Batch, Encoded, Spec, State

STAGES = ("train", "val", "test")

EncodeFn = Callable[[Batch, Optional[State]], Encoded]
"""``encode(batch, state=None) -> Encoded``: the model's encoder and recurrent stack, starting
from ``state`` (None: zeros)."""


def _names(types: Union[type, tuple[type, ...]]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


class Head(nn.Module, ABC):
    """Base class of task heads.

    Subclasses take ``spec`` and ``input_size`` (the size of the stack's output, or of the
    encoder's when the model has no stack) as their first two arguments; every other argument is
    a hyperparameter chosen in YAML under ``model.head.init_args``. Build every layer in
    ``__init__`` from these sizes (lazy layers break DDP).
    """

    spec_type: ClassVar[Union[type, tuple[type, ...]]] = Spec
    """The spec class (or classes) this head reads. The model refuses to build it from data whose
    spec is not an instance, naming the data modules that would fit."""
    prediction_format: ClassVar[Literal["csv", "jsonl", "txt"]] = "csv"
    """Format of the prediction file when ``--prediction.output`` names none."""
    tbptt_targets: ClassVar[Optional[Literal["steps", "sequence"]]] = None
    """How truncated BPTT cuts this head's targets: ``steps`` (one target per input step, cut with
    the inputs), ``sequence`` (one target per sequence: the loss is taken on each sequence's last
    window). None: ``steps`` when the targets are (B, T, ...) like the inputs."""

    def __init__(self, spec: Spec, input_size: int) -> None:
        super().__init__()
        if not isinstance(spec, self.spec_type):
            raise SeqkitError(f"{type(self).__name__} needs a {_names(self.spec_type)}, got {type(spec).__name__}")
        self.spec = spec
        self.input_size = input_size

    def monitor(self) -> tuple[str, str]:
        """The validation metric that picks the best checkpoint, and ``"max"`` or ``"min"``:
        when a config lists no ModelCheckpoint, seqkit keeps ``best.ckpt`` by it (and
        ``last.ckpt``), and ``seqkit test --ckpt_path best`` evaluates that. It must be logged at
        every validation. The default is the validation loss; heads override it with their
        task's main metric (accuracy, BLEU, MASE)."""
        return "val_loss", "min"

    def set_metrics(self, metrics: MetricCollection) -> None:
        """Keep one copy of ``metrics`` per stage as attributes (train_metrics, val_metrics,
        test_metrics), so Lightning moves them to the device and syncs them under DDP."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", metrics.clone(prefix=f"{stage}_"))

    def metrics(self, stage: str) -> Optional[MetricCollection]:
        """This stage's metrics (logged by the model once per epoch), or None."""
        return getattr(self, f"{stage}_metrics", None)

    def bind(self, encoder: nn.Module) -> None:
        """Called once the model has built this head and its input encoder (each ensemble
        member's own): a head that shares weights with the encoder, such as a decoder reading
        the source embedding, links them here. The default does nothing."""

    def on_stage_start(self, stage: str) -> None:
        """Called at the start of every epoch of ``stage`` ("train", "val", "test", "predict"),
        the validation sanity check excepted. The default does nothing."""

    @abstractmethod
    def loss(self, encoded: Encoded, batch: Batch, stage: str, encode: EncodeFn) -> torch.Tensor:
        """Return the scalar loss of ``batch`` for ``stage`` ("train", "val", "test") and update
        this stage's metrics; the model logs both.

        Positions at or past ``batch.lengths`` (inputs) and ``batch.target_lengths`` (sequence
        targets) are padding and must not count.

        :param encoded: The encoder and stack run over ``batch.inputs``.
        :param batch: The batch, with its targets.
        :param stage: "train", "val" or "test".
        :param encode: The model's ``encode(batch, state)``, for heads that run it again.
        """

    def predict(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> list[dict[str, Any]]:
        """Return the prediction records of ``batch``: dicts of JSON-serialisable values, each with
        ``index``, its example's ``batch.index`` (several records may share one, e.g. one per
        forecast step). Prediction writers turn records into files, in input order.

        :param encoded: The encoder and stack run over ``batch.inputs``.
        :param batch: The batch (its targets may be absent).
        :param encode: The model's ``encode(batch, state)``, for heads that run it again.
        """
        raise SeqkitError(f"{type(self).__name__} does not support predict")

    # -- ensembles (model.ensemble: N). A head joins them by overriding ``output``,
    # ``loss_from`` and ``predict_from``; its ``loss`` and ``predict`` are then best written as
    # ``loss_from(output(...), ...)`` and ``predict_from(output(...), ...)``.
    def output(self, encoded: Encoded, batch: Batch, encode: EncodeFn) -> torch.Tensor:
        """The head's raw output for ``encoded`` (class logits or regression values), the thing an
        ensemble averages; ``encode`` is this member's."""
        raise SeqkitError(f"{type(self).__name__} does not combine ensemble members")

    def combine(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Join the members' ``output``s: the log of the mean class probability when the head
        classifies (``self.classify``), so argmax, softmax and cross-entropy read it as logits;
        the mean otherwise."""
        stacked = torch.stack(outputs)
        if getattr(self, "classify", False):
            return torch.logsumexp(stacked.float().log_softmax(-1), 0) - math.log(len(outputs))
        return stacked.mean(0)

    def loss_from(self, output: torch.Tensor, batch: Batch, stage: str, update_metrics: bool = True) -> torch.Tensor:
        """The loss of ``output`` (one member's, or the ``combine``d one) on ``batch``; updates this
        stage's metrics when ``update_metrics``."""
        raise SeqkitError(f"{type(self).__name__} does not combine ensemble members")

    def predict_from(self, output: torch.Tensor, encoded: Encoded, batch: Batch) -> list[dict[str, Any]]:
        """The prediction records of a (combined) ``output``; ``encoded`` is member 0's."""
        raise SeqkitError(f"{type(self).__name__} does not combine ensemble members")

    def write_predictions(self, path: str, records: list[dict[str, Any]]) -> None:
        """Write the records of a whole predict run to ``path`` (rank zero only, records in input
        order). The default writes CSV, JSONL or text by the file's extension; a head overrides
        it to lay out its own files (one row per frame, a picture beside them)."""
        from seqkit.callbacks import write_records

        write_records(path, records)


def supports_ensemble(head: Head) -> bool:
    """True when ``head`` overrides the hooks ``model.ensemble`` needs, no higher in its class tree
    than its ``loss`` and ``predict`` (a subclass that changes ``loss`` alone does not inherit
    its parent's ensemble support)."""
    def owner(name: str) -> type:
        return next(k for k in type(head).__mro__ if name in vars(k))

    if any(owner(name) is Head for name in ("output", "loss_from", "predict_from")):
        return False
    return issubclass(owner("loss_from"), owner("loss")) and issubclass(owner("predict_from"), owner("predict"))


def records_for(batch: Batch) -> list[dict[str, Any]]:
    """One starting record per example of ``batch``: its ``index``, and its name as ``input``
    when the data module gives names."""
    names = batch.names or [None] * batch.size
    return [{"index": i} if n is None else {"index": i, "input": n} for i, n in zip(batch.index.tolist(), names)]
