"""Truncated backpropagation through time (TBPTT) and stateful training over long streams.

Williams & Peng (1990), "An efficient gradient-based algorithm for on-line training of recurrent
network trajectories"; Sutskever (2013), "Training Recurrent Neural Networks", section 3.1.
Lightning 2 removed its built-in ``truncated_bptt_steps``; seqkit puts it back:

- ``SequenceModel(tbptt_steps=k)`` cuts every training batch into windows of ``k`` time steps.
  The recurrent state (h, c) at the end of one window starts the next, detached, so gradients
  flow back at most ``k`` steps; each window gets its own optimizer step (gradient clipping and
  "step" learning-rate schedulers apply per window). With ``k`` at least the sequence length
  there is one window and the gradient is exactly that of full BPTT.
- A data module whose spec says ``stateful=True`` lays out its batches with
  :class:`StreamChunks`: row ``r`` of batch ``i`` continues row ``r`` of batch ``i - 1``. The
  model then carries the final state of each batch into the next (detached), per stage, and
  starts from zeros at every epoch.

The state is carried explicitly: each window calls the model's ``encode(window, state)`` with the
state the previous window ended in. How targets are cut: targets whose second dimension equals
the input length (one target per step: next-symbol prediction, copy tasks) are cut with the inputs
and every window carries a loss. Any other targets belong to the whole sequence (one label per
sequence): the loss is taken on a window of each sequence's last ``k`` steps, after a pass over
the steps before them that only advances the state. A head says which it is with
``Head.tbptt_targets``.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import Dataset

from seqkit.errors import SeqkitError
from seqkit.spec import Batch, Encoded, State

# Batch fields that are never cut along time with the inputs
_NOT_CUT = {"inputs", "lengths", "targets", "target_lengths", "index", "window"}


def carry(encoded: Encoded, initial: Optional[State]) -> Optional[State]:
    """The state to start the next call from: ``encoded.state`` detached, except that rows with no
    step in this call (length 0: the sequence ended in an earlier window) keep ``initial``."""
    if encoded.state is None:
        return None
    final = encoded.state
    lengths = encoded.lengths
    if initial is not None and lengths is not None and bool((lengths == 0).any()):
        done = (lengths == 0).to(final[0].device).view(1, -1, 1)
        final = tuple(torch.where(done, s0.to(s1.device), s1) for s0, s1 in zip(initial, final))
    return tuple(s.detach() for s in final)


def check_rows(state: Optional[State], B: int) -> None:
    """A carried state must have one row per sequence of the next batch."""
    if state is not None and state[0].shape[1] != B:
        raise SeqkitError(
            f"stateful training: a batch of {B} rows follows one of {state[0].shape[1]} rows; "
            "every batch of a stream must have the same number of rows (see seqkit.StreamChunks)"
        )


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


def _cut_fields(batch: Batch, B: int, T: int, cut: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
    """The extra (B, T, ...) tensor fields of a plugin's Batch subclass, cut like the inputs."""
    out = {}
    for f in fields(batch):
        if f.name not in _NOT_CUT:
            value = getattr(batch, f.name)
            if _time_aligned(value, B, T):
                out[f.name] = cut(value)
    return out


def split_batch(batch: Batch, k: int, per_step: bool) -> list[tuple[Batch, bool]]:
    """Cut ``batch`` into windows of at most ``k`` steps: a list of (window, carries_loss).

    Per-step targets (``per_step``): consecutive windows [0, k), [k, 2k), ... of the inputs, the
    lengths, the targets (and target lengths) and every (B, T, ...) tensor field of the batch;
    each window carries a loss. Per-sequence targets: a window of each sequence's last ``k`` steps
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
        target_lengths = None if batch.target_lengths is None else (batch.target_lengths - t0).clamp(0, t1 - t0)
        window = replace(batch, inputs=inputs[:, t0:t1], lengths=lengths, targets=batch.targets[:, t0:t1],
                         target_lengths=target_lengths, window=(t0, t1, T),
                         **_cut_fields(batch, B, T, lambda v: v[:, t0:t1]))
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
        windows.append((replace(batch, inputs=batch.inputs[:, :P], lengths=starts,
                                **_cut_fields(batch, B, T, lambda v: v[:, :P])), False))
    rows = torch.arange(B, device=lengths.device).unsqueeze(1)  # (B, 1)
    steps = (starts.unsqueeze(1) + torch.arange(width, device=lengths.device)).clamp(max=T - 1)  # (B, width)
    last = replace(batch, inputs=batch.inputs[rows, steps], lengths=lengths - starts, window=(starts, width, T),
                   **_cut_fields(batch, B, T, lambda v: v[rows, steps]))
    windows.append((last, True))
    return windows


def run_windows(
    encode: Callable[[Batch, Optional[State]], Encoded],
    loss_fn: Callable[[Encoded, Batch], torch.Tensor],
    batch: Batch,
    k: int,
    per_step: bool,
    update: Callable[[torch.Tensor], None],
    zero_loss: Callable[[], torch.Tensor],
    state: Optional[State] = None,
    num_steps: Optional[int] = None,
) -> tuple[list[torch.Tensor], Optional[State]]:
    """Truncated BPTT over one batch: for each window, ``loss_fn(encode(window, state), window)``
    then ``update(loss)`` (backward and optimizer step); the state is carried, detached, from
    window to window.

    ``state`` continues from an earlier batch (stateful training); ``num_steps`` is the number of
    time steps to cover (the longest batch on any process under DDP, so every process runs the
    same number of updates: windows past this process's batch update with ``zero_loss()``).
    Returns the losses of the windows that carried one, and the state after the last window.
    """
    windows: list[tuple[Optional[Batch], bool]] = list(split_batch(batch, k, per_step))
    if per_step and num_steps is not None:
        windows += [(None, True)] * max(0, -(-num_steps // k) - len(windows))
    losses = []
    for window, carries_loss in windows:
        if window is None or (carries_loss and window.lengths is not None and not bool((window.lengths > 0).any())):
            update(zero_loss())
            continue
        check_rows(state, window.size)
        if carries_loss:
            encoded = encode(window, state)
            loss = loss_fn(encoded, window)
            update(loss)
            losses.append(loss.detach())
        else:
            with torch.no_grad():
                encoded = encode(window, state)  # only advances the state
        state = carry(encoded, state)
    return losses, state


def step_schedulers(trainer: Any, interval: str) -> None:
    """Step the learning-rate schedulers of ``interval`` ("step" or "epoch"), as Lightning does
    under automatic optimization (manual optimization steps none by itself)."""
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
