"""Truncated backpropagation through time (TBPTT) and stateful training over long streams.

Williams & Peng (1990), "An efficient gradient-based algorithm for on-line training of recurrent
network trajectories"; Sutskever (2013), "Training Recurrent Neural Networks", section 3.1.
Lightning 2 removed its built-in ``truncated_bptt_steps``; seqkit puts it back:

- ``SequenceModel(tbptt_steps=k)`` cuts every training batch into windows of ``k`` time steps.
  The recurrent state (h, c) at the end of one window starts the next, detached, so gradients
  flow back at most ``k`` steps; each window gets its own optimizer step (gradient clipping and
  "step" learning-rate schedulers apply per window). With ``k`` at least the sequence length
  there is one window and the gradient is exactly that of full BPTT.
- A data module that publishes ``spec.extra["stateful"] = True`` lays out its batches with
  :class:`StreamChunks`: row ``r`` of batch ``i`` continues row ``r`` of batch ``i - 1``. The
  model then carries the final state of each batch into the next (detached), per stage, and
  starts from zeros at every epoch.

How targets are cut: targets whose second dimension equals the input length (one target per
step: next-symbol prediction, copy tasks) are cut with the inputs and every window carries a
loss. Any other targets belong to the whole sequence (one label per sequence): the loss is taken
on a window of each sequence's last ``k`` steps, after a pass over the steps before them that only
advances the state. A head may say which it is with a class attribute ``tbptt_targets = "steps"``
or ``"sequence"``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset

from seqkit.errors import SeqkitError
from seqkit.lstm import State
from seqkit.spec import Batch

if TYPE_CHECKING:
    from seqkit.model import SequenceModel


# -- carrying the state -------------------------------------------------------------------------
class StateCarry:
    """Feeds the recurrent stack's final state of one call in as the initial state of the next.

    While attached to a stack (``with carry.attached(model.rnn): ...``), every call of the stack
    that is given no state starts from the carried one, and its final state is kept, detached, for
    the next call. Rows whose length in a call is 0 (the sequence ended in an earlier window) keep
    their state unchanged, as the stack contract requires of padding.
    """

    def __init__(self) -> None:
        self.state: State | None = None

    def reset(self) -> None:
        """Start the next call from zeros."""
        self.state = None

    @contextmanager
    def attached(self, rnn: torch.nn.Module) -> Iterator[StateCarry]:
        used: dict[str, Any] = {}

        def before(module, args, kwargs):
            args = list(args)
            x = args[0] if args else kwargs["x"]
            used["lengths"] = args[1] if len(args) > 1 else kwargs.get("lengths")
            given = args[2] if len(args) > 2 else kwargs.get("state")
            if given is None and self.state is not None:
                B = x.shape[0]
                if self.state[0].shape[1] != B:
                    raise SeqkitError(
                        f"stateful training: a batch of {B} rows follows one of {self.state[0].shape[1]} rows; "
                        "every batch of a stream must have the same number of rows (see seqkit.StreamChunks)"
                    )
                given = tuple(s.to(x.device) for s in self.state)
                if len(args) > 2:
                    args[2] = given
                else:
                    kwargs["state"] = given
            used["initial"] = given
            return tuple(args), kwargs

        def after(module, args, kwargs, output):
            out, final = output
            lengths, initial = used.get("lengths"), used.get("initial")
            if lengths is not None and bool((lengths == 0).any()):
                # rows with no step in this call: the stack ran them over one padding step
                done = (lengths == 0).to(out.device)
                out = out.masked_fill(done.view(-1, 1, 1), 0.0)  # (B, T, D): zeros on padding
                if initial is not None:
                    final = tuple(torch.where(done.view(1, -1, 1), s0, s1) for s0, s1 in zip(initial, final))
            self.state = tuple(s.detach() for s in final)
            return out, final

        handles = [
            rnn.register_forward_pre_hook(before, with_kwargs=True),
            rnn.register_forward_hook(after, with_kwargs=True),
        ]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


# -- cutting a batch into windows ---------------------------------------------------------------
def _time_aligned(value: Any, B: int, T: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[0] == B and value.shape[1] == T


def targets_per_step(head: Any, batch: Batch) -> bool:
    """Whether ``batch.targets`` has one target per time step (cut with the inputs)."""
    declared = getattr(head, "tbptt_targets", None)
    if declared is not None:
        if declared not in ("steps", "sequence"):
            raise SeqkitError(f"{type(head).__name__}.tbptt_targets must be 'steps' or 'sequence', got {declared!r}")
        return declared == "steps"
    inputs = batch.inputs
    return _time_aligned(batch.targets, inputs.shape[0], inputs.shape[1])


def split_batch(batch: Batch, k: int, per_step: bool) -> list[tuple[Batch, bool]]:
    """Cut ``batch`` into windows of at most ``k`` steps: a list of (window, carries_loss).

    Per-step targets (``per_step``): consecutive windows [0, k), [k, 2k), ... of the inputs, the
    lengths, the targets (and target lengths) and every (B, T, ...) tensor in ``extra``; each
    window carries a loss. Per-sequence targets: a window of each sequence's last ``k`` steps
    carries the loss (the gradient reaches back exactly ``k`` steps from every sequence's end,
    whatever its length), after one window of the steps before them that only advances the state.
    """
    if k < 1:
        raise SeqkitError(f"model.tbptt_steps must be >= 1, got {k}")
    inputs = batch.inputs
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        raise SeqkitError("truncated BPTT needs (B, T, ...) tensor inputs")
    B, T = inputs.shape[:2]  # batch, time
    if not per_step:
        return _split_at_ends(batch, k, B, T)
    windows = []
    for t0 in range(0, T, k):
        t1 = min(t0 + k, T)
        lengths = None if batch.lengths is None else (batch.lengths - t0).clamp(0, t1 - t0)
        extra = {key: (v[:, t0:t1] if _time_aligned(v, B, T) else v) for key, v in batch.extra.items()}
        extra["tbptt_window"] = (t0, t1, T)
        target_lengths = None if batch.target_lengths is None else (batch.target_lengths - t0).clamp(0, t1 - t0)
        window = replace(batch, inputs=inputs[:, t0:t1], lengths=lengths, targets=batch.targets[:, t0:t1],
                         target_lengths=target_lengths, extra=extra)
        windows.append((window, lengths is None or bool((lengths > 0).any())))
    return windows


def _split_at_ends(batch: Batch, k: int, B: int, T: int) -> list[tuple[Batch, bool]]:
    lengths = batch.lengths if batch.lengths is not None else torch.full((B,), T, dtype=torch.long)
    lengths = lengths.to(batch.inputs.device)
    starts = (lengths - k).clamp(min=0)  # (B,) where each sequence's last window begins
    width = min(k, T)
    windows = []
    P = int(starts.max())
    if P > 0:  # the steps before every last window: no loss, no gradient, one pass
        extra = {key: (v[:, :P] if _time_aligned(v, B, T) else v) for key, v in batch.extra.items()}
        windows.append((replace(batch, inputs=batch.inputs[:, :P], lengths=starts, extra=extra), False))
    rows = torch.arange(B, device=lengths.device).unsqueeze(1)  # (B, 1)
    steps = (starts.unsqueeze(1) + torch.arange(width, device=lengths.device)).clamp(max=T - 1)  # (B, width)
    extra = {key: (v[rows, steps] if _time_aligned(v, B, T) else v) for key, v in batch.extra.items()}
    extra["tbptt_window"] = (starts, width, T)
    last = replace(batch, inputs=batch.inputs[rows, steps], lengths=lengths - starts, extra=extra)
    windows.append((last, True))
    return windows


def _zero_loss(model: torch.nn.Module) -> torch.Tensor:
    # A window with no real step on this process: still one backward (DDP expects the same
    # number on every rank), with a zero gradient.
    return sum(p.sum() * 0.0 for p in model.parameters() if p.requires_grad)


def run_windows(
    model: SequenceModel,
    batch: Batch,
    k: int,
    loss_fn: Callable[[Batch], torch.Tensor],
    update: Callable[[torch.Tensor], None],
    carry: StateCarry | None = None,
    num_steps: int | None = None,
) -> list[torch.Tensor]:
    """Truncated BPTT over one batch: for each window, ``loss_fn(window)`` then ``update(loss)``
    (backward and optimizer step); the state is carried, detached, from window to window.

    ``carry`` continues from an earlier batch (stateful training); ``num_steps`` is the number of
    time steps to cover (the longest batch on any process under DDP, so every process runs the
    same number of updates). Returns the losses of the windows that carried one.
    """
    per_step = targets_per_step(model.head, batch)
    carry = carry if carry is not None else StateCarry()
    windows = split_batch(batch, k, per_step)
    if per_step and num_steps is not None:
        windows += [(None, True)] * max(0, -(-num_steps // k) - len(windows))
    losses = []
    with carry.attached(model.rnn):
        for window, carries_loss in windows:
            if window is None or (carries_loss and window.lengths is not None and not bool((window.lengths > 0).any())):
                update(_zero_loss(model))
            elif carries_loss:
                loss = loss_fn(window)
                update(loss)
                losses.append(loss.detach())
            else:
                with torch.no_grad():
                    model.encode(window)  # only advances the carried state
    return losses


# -- what SequenceModel calls -------------------------------------------------------------------
def stream_carry(model: SequenceModel, stage: str, batch_idx: int) -> StateCarry | None:
    """The state carried from batch to batch of ``stage`` when the data is a stateful stream
    (``spec.extra["stateful"]``), reset at the first batch of every epoch; else None."""
    if not model.spec.extra.get("stateful") or model.rnn is None:
        return None
    carry = model._carries.setdefault(stage, StateCarry())
    if batch_idx == 0:
        carry.reset()
    return carry


@contextmanager
def stream_state(model: SequenceModel, stage: str, batch_idx: int) -> Iterator[None]:
    """Within this context the stack continues from the previous batch of a stateful stream."""
    carry = stream_carry(model, stage, batch_idx)
    if carry is None:
        yield
        return
    with carry.attached(model.rnn):
        yield


def take_over_clipping(model: SequenceModel) -> None:
    """Lightning refuses ``Trainer(gradient_clip_val=...)`` with manual optimization: keep the
    trainer's clipping settings on the model (applied per window) and clear them on the trainer."""
    trainer = model.trainer
    if trainer.gradient_clip_val or trainer.gradient_clip_algorithm is not None:
        model._tbptt_clip = (trainer.gradient_clip_val, trainer.gradient_clip_algorithm)
        trainer.gradient_clip_val, trainer.gradient_clip_algorithm = None, None


def give_back_clipping(model: SequenceModel) -> None:
    clip = getattr(model, "_tbptt_clip", None)
    trainer = model._trainer
    if clip is not None and trainer is not None:
        trainer.gradient_clip_val, trainer.gradient_clip_algorithm = clip
        model._tbptt_clip = None


def _step_schedulers(model: SequenceModel, interval: str) -> None:
    trainer = model.trainer
    count = trainer.global_step if interval == "step" else trainer.current_epoch + 1
    for config in trainer.lr_scheduler_configs:
        if config.interval != interval or count % config.frequency:
            continue
        if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = trainer.callback_metrics.get(config.monitor)
            if value is None:
                if config.strict:
                    raise SeqkitError(f"lr_scheduler: ReduceLROnPlateau monitors {config.monitor!r}, which was not logged "
                                      f"(logged: {', '.join(sorted(trainer.callback_metrics)) or 'nothing'})")
                continue
            config.scheduler.step(value)
        else:
            config.scheduler.step()


def tbptt_training_step(model: SequenceModel, batch: Batch, carry: StateCarry | None = None) -> torch.Tensor:
    """One training batch of truncated BPTT under Lightning's manual optimization."""
    if getattr(model.rnn, "num_directions", 1) > 1:
        raise SeqkitError("model.tbptt_steps needs a unidirectional stack: a backward direction reads the future")
    opt = model.optimizers()
    clip_val, clip_alg = getattr(model, "_tbptt_clip", None) or (None, None)
    num_steps = None
    if model.trainer.world_size > 1:
        T = torch.tensor(float(batch.inputs.shape[1]), device=model.device)
        num_steps = int(model.trainer.strategy.reduce(T, reduce_op="max"))

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad()
        model.manual_backward(loss)
        if clip_val:
            model.clip_gradients(opt, gradient_clip_val=clip_val, gradient_clip_algorithm=clip_alg or "norm")
        opt.step()
        _step_schedulers(model, "step")

    losses = run_windows(model, batch, model.tbptt_steps, lambda w: model._step(w, "train"), update, carry, num_steps)
    return torch.stack(losses).mean() if losses else torch.zeros((), device=model.device)


def on_train_epoch_end(model: SequenceModel) -> None:
    """Epoch-interval learning-rate schedulers (manual optimization steps none by itself)."""
    _step_schedulers(model, "epoch")


# -- stateful batching ----------------------------------------------------------------------------
class StreamChunks(Dataset):
    """Long streams laid out so that consecutive batches continue each other row by row.

    ``streams`` is a list of examples, each a dict of equal-length (L, ...) tensors (inputs,
    per-step targets, ...). They are concatenated and cut into ``rows`` parallel rows (the
    remainder is dropped), and every row into chunks of ``chunk_len`` steps. Item
    ``i * rows + r`` is chunk ``i`` of row ``r``, so a loader that takes ``rows`` items at a time
    in order (no shuffling) gives row ``r`` of batch ``i`` the continuation of row ``r`` of batch
    ``i - 1`` - batchify of Zaremba et al. (2014) / the PyTorch word-language-model example.

    Under DDP, give ``rows`` = batch size x number of processes: seqkit's sampler hands each
    process one contiguous slice of every global batch, so rows continue on every process.
    """

    def __init__(self, streams: Sequence[dict[str, torch.Tensor]], rows: int, chunk_len: int) -> None:
        if rows < 1 or chunk_len < 1:
            raise SeqkitError(f"StreamChunks needs rows >= 1 and chunk_len >= 1 (got {rows} and {chunk_len})")
        keys = list(streams[0])
        whole = {key: torch.cat([s[key] for s in streams]) for key in keys}
        total = next(iter(whole.values())).shape[0]
        per_row = total // rows
        n_chunks = per_row // chunk_len
        if n_chunks < 1:
            raise SeqkitError(f"a stream of {total} steps is too short for {rows} rows of chunks of {chunk_len} steps")
        self.rows, self.chunk_len, self.num_chunks = rows, chunk_len, n_chunks
        used = rows * n_chunks * chunk_len
        # (rows, chunks, chunk_len, ...): row r is one contiguous piece of the concatenated stream
        self.data = {key: v[: rows * per_row].view(rows, per_row, *v.shape[1:])[:, : n_chunks * chunk_len]
                     .reshape(rows, n_chunks, chunk_len, *v.shape[1:]) for key, v in whole.items()}
        self.steps_used = used

    def __len__(self) -> int:
        return self.rows * self.num_chunks

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        chunk, row = divmod(i, self.rows)
        return {key: v[row, chunk] for key, v in self.data.items()}
