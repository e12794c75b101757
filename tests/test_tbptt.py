"""Truncated BPTT and stateful streams (seqkit.tbptt), with the state carried explicitly through
``model.encode(batch, state)``: a window at least as long as the sequence gives exactly the
gradient of full BPTT; shorter windows carry the state forward (same outputs, rows that end early
keep their state) but cut the gradient at window boundaries; the model's gradient clipping and
schedulers apply per window; stream batches continue each other row by row, and the model carries
their state from batch to batch, resetting it every epoch."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from functools import partial
from typing import Optional

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from conftest import CONFIGS, logger_args
from seqkit import Batch, LengthBucketSampler, LSTMStack, SeqkitError, SequenceModel, SimpleRNNStack, StreamChunks
from seqkit import tbptt
from seqkit_longlag import AddingProblemData, EmbeddedReberData, LongLagEndHead, LongLagStepHead


def _reber_batch(n=6, seed=0):
    data = EmbeddedReberData(seed=seed)
    examples = [data.make_example(random.Random(f"t{seed}:{i}")) for i in range(n)]
    return data, data.collate(examples)


def _adding_batch(n=6, T=30):
    data = AddingProblemData(seq_len=T)
    examples = [data.make_example(random.Random(f"a:{i}")) for i in range(n)]
    return data, data.collate(examples)


def _model(data, head, rnn=LSTMStack, tbptt_steps=None, hidden=8, clip=None):
    torch.manual_seed(0)
    return SequenceModel(head=head, rnn=partial(rnn, hidden_size=hidden), spec=data.spec, tbptt_steps=tbptt_steps,
                         gradient_clip_val=clip)


def _loss(model, batch, state=None):
    """The head's training loss on ``batch``, the stack starting from ``state``."""
    return model.head.loss(model.encode(batch, state), batch, "train", model.encode)


def _advance(model, windows, state=None):
    """Run ``windows`` without gradients, carrying the state; return the state after them."""
    with torch.no_grad():
        for window in windows:
            state = tbptt.carry(model.encode(window, state), state)
    return state


def _fit_one_batch(model, batch, **trainer_kwargs):
    """One training batch through Lightning with SGD at lr 0: p.grad holds the last window's gradient."""
    model.configure_optimizers = lambda: torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1, **trainer_kwargs)
    trainer.fit(model, train_dataloaders=DataLoader([batch], batch_size=None))
    return trainer


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _run(model, batch, k, per_step, state=None, num_steps=None):
    """tbptt.run_windows with plain backward (gradients add up over windows); returns
    (losses, final state, number of updates)."""
    updates = []

    def update(loss):
        updates.append(float(loss.detach()))
        loss.backward()

    def zero_loss():
        return sum(p.sum() * 0.0 for p in model.parameters())

    losses, state = tbptt.run_windows(model.encode, lambda enc, w: model.head.loss(enc, w, "train", model.encode),
                                      batch, k, per_step, update, zero_loss, state, num_steps)
    return losses, state, updates


@pytest.mark.parametrize("task", ["adding", "reber"])
@pytest.mark.parametrize("rnn", [LSTMStack, SimpleRNNStack])
def test_window_as_long_as_sequence_gives_full_bptt_gradient(task, rnn):
    data, batch = _adding_batch() if task == "adding" else _reber_batch()
    head = LongLagEndHead if task == "adding" else LongLagStepHead
    T = batch.inputs.shape[1]
    model = _model(data, head, rnn, tbptt_steps=T + 3)
    reference = copy.deepcopy(model)
    _loss(reference, batch).backward()
    want = _grads(reference)

    trainer = _fit_one_batch(model, batch)
    assert trainer.global_step == 1  # one window, one optimizer step
    got = _grads(model)
    assert set(got) == set(want) and len(want) >= 4
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)


def test_model_gradient_clipping_applies_per_window():
    data, batch = _reber_batch()
    model = _model(data, LongLagStepHead, tbptt_steps=4, clip=1e-3)
    reference = copy.deepcopy(model)
    # the last window's gradient at the initial weights (lr 0 keeps them), before clipping
    windows = tbptt.split_batch(batch, 4, per_step=True)
    state = _advance(reference, [w for w, _ in windows[:-1]])
    _loss(reference, windows[-1][0], state).backward()
    want = torch.cat([g.flatten() for g in _grads(reference).values()])
    assert want.norm() > 1e-2

    trainer = _fit_one_batch(model, batch)
    assert trainer.global_step == len(windows)  # one optimizer step per window
    got = torch.cat([g.flatten() for g in _grads(model).values()])
    assert got.norm() == pytest.approx(1e-3, rel=1e-3)  # clipped to model.gradient_clip_val
    assert F.cosine_similarity(got, want, dim=0) > 0.9999  # same direction
    assert trainer.gradient_clip_val is None  # the Trainer's settings are left alone


def test_trainer_gradient_clipping_is_refused_under_tbptt():
    data, batch = _reber_batch()
    model = _model(data, LongLagStepHead, tbptt_steps=4)
    with pytest.raises(SeqkitError, match=r"trainer\.gradient_clip_val=0\.5 cannot be used with model\.tbptt_steps.*model\.gradient_clip_val"):
        _fit_one_batch(model, batch, gradient_clip_val=0.5)


def test_short_windows_carry_state_and_truncate_gradient():
    data, batch = _reber_batch(n=4)
    k = 3
    model = _model(data, LongLagStepHead, tbptt_steps=k)
    lengths = batch.lengths.clone()
    assert len(set(lengths.tolist())) > 1
    windows = [w for w, _ in tbptt.split_batch(batch, k, per_step=True)]
    assert [w.window for w in windows] == [(t0, min(t0 + k, batch.inputs.shape[1]), batch.inputs.shape[1])
                                           for t0 in range(0, batch.inputs.shape[1], k)]
    # outputs: windows with the carried state give the same outputs and final state as one pass
    with torch.no_grad():
        full = model.encode(batch)
        outs, state = [], None
        for window in windows:
            enc = model.encode(window, state)
            outs.append(enc.outputs)
            state = tbptt.carry(enc, state)
    torch.testing.assert_close(torch.cat(outs, 1), full.outputs)
    for got, want in zip(state, full.state):  # rows that ended early kept their final state
        torch.testing.assert_close(got, want)
    assert int(windows[-1].lengths.min()) == 0  # some rows had ended before the last window

    # gradients: the sum over windows of each window's loss, the state detached in between,
    # computed here with the bare torch.nn.LSTM underneath the stack
    model.zero_grad()
    losses, _, updates = _run(model, batch, k, per_step=True)
    assert len(losses) == len(updates) == len(windows)
    got = _grads(model)
    reference = copy.deepcopy(model)
    reference.zero_grad()
    lstm, emb, proj = reference.rnn.lstm, reference.encoder, reference.head.proj
    state, T = None, batch.inputs.shape[1]
    for t0 in range(0, T, k):
        x = emb(batch.inputs[:, t0 : t0 + k])
        out, new_state = lstm(x, state)
        steps = (lengths - t0).clamp(0, k)
        mask = torch.arange(out.shape[1]).unsqueeze(0) < steps.unsqueeze(1)  # (B, k)
        per_step = F.binary_cross_entropy_with_logits(proj(out), batch.targets[:, t0 : t0 + k], reduction="none").sum(-1)
        ((per_step * mask).sum() / mask.sum()).backward()
        # rows already finished keep their state (the padding never reaches the state)
        done = (steps == 0).view(1, -1, 1)
        state = tuple(torch.where(done, s0, s1).detach() for s0, s1 in zip(state, new_state)) if state else tuple(s.detach() for s in new_state)
    for name, g in _grads(reference).items():
        torch.testing.assert_close(got[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # and it is not the full-BPTT gradient: the windows cut it
    full_model = copy.deepcopy(model)
    full_model.zero_grad()
    _loss(full_model, batch).backward()
    assert not torch.allclose(full_model.rnn.lstm.weight_hh_l0.grad, got["rnn.lstm.weight_hh_l0"], atol=1e-4)


def test_sequence_targets_backpropagate_k_steps_from_each_end():
    data, batch = _adding_batch(n=4, T=30)
    k = 8
    model = _model(data, LongLagEndHead, tbptt_steps=k)
    lengths = batch.lengths.tolist()
    assert len(set(lengths)) > 1
    windows = tbptt.split_batch(batch, k, per_step=False)
    assert [carries for _, carries in windows] == [False, True]  # the steps before, then the last k
    starts, width, T = windows[-1][0].window
    assert starts.tolist() == [L - k for L in lengths] and width == k and T == batch.inputs.shape[1]
    model.zero_grad()
    losses, _, _ = _run(model, batch, k, per_step=False)
    assert len(losses) == 1
    got = _grads(model)
    # reference, one sequence at a time with the bare torch.nn.LSTM: no gradient through its
    # first L - k steps, full gradient through its last k
    reference = copy.deepcopy(model)
    reference.zero_grad()
    lstm, proj = reference.rnn.lstm, reference.head.proj
    preds = []
    for r, L in enumerate(lengths):
        x = reference.encoder(batch.inputs[r : r + 1, :L], None)  # (1, L, D)
        with torch.no_grad():
            _, state = lstm(x[:, : L - k])
        _, (h, _) = lstm(x[:, L - k :], state)
        preds.append(proj(h[-1]))
    F.mse_loss(torch.cat(preds), batch.targets).backward()
    for name, g in _grads(reference).items():
        torch.testing.assert_close(got[name], g, rtol=1e-4, atol=1e-6, msg=name)
    # the prediction is the same as one full pass (Encoded.final of the last window)
    with torch.no_grad():
        want = model.head(model.encode(batch))
        state = _advance(model, [windows[0][0]])
        torch.testing.assert_close(model.head(model.encode(windows[-1][0], state)), want)


@dataclass
class _NumberedBatch(Batch):
    frame_numbers: Optional[torch.Tensor] = None  # (B, T): cut with the inputs


def test_windows_cut_batch_subclass_fields_along_time():
    B, T = 3, 7
    batch = _NumberedBatch(inputs=torch.randn(B, T, 2), lengths=torch.tensor([7, 5, 2]), targets=torch.zeros(B, T, dtype=torch.long),
                       frame_numbers=torch.arange(T).expand(B, T).clone(), names=["a", "b", "c"])
    windows = tbptt.split_batch(batch, 3, per_step=True)
    assert [w.frame_numbers[0].tolist() for w, _ in windows] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [w.lengths.tolist() for w, _ in windows] == [[3, 3, 2], [3, 2, 0], [1, 0, 0]]
    assert all(isinstance(w, _NumberedBatch) and w.names == ["a", "b", "c"] for w, _ in windows)


def test_every_process_runs_as_many_windows_as_the_longest_batch():
    """Under DDP ``num_steps`` is the longest batch on any process: windows past this one's end
    still update (with a zero loss), so every process takes the same optimizer steps."""
    data, batch = _reber_batch(n=3)
    model = _model(data, LongLagStepHead, tbptt_steps=4)
    T = batch.inputs.shape[1]
    losses, _, updates = _run(model, batch, 4, per_step=True, num_steps=T + 9)
    assert len(updates) == -(-(T + 9) // 4) and len(losses) == -(-T // 4)
    assert updates[len(losses):] == [0.0] * (len(updates) - len(losses))


def test_tbptt_rejects_bad_settings():
    data, batch = _reber_batch()
    with pytest.raises(SeqkitError, match="tbptt_steps"):
        _model(data, LongLagStepHead, tbptt_steps=0)
    with pytest.raises(SeqkitError, match="gradient_clip_val must be > 0"):
        _model(data, LongLagStepHead, tbptt_steps=4, clip=0.0)
    with pytest.raises(SeqkitError, match="unidirectional"):
        model = SequenceModel(head=LongLagStepHead, rnn=partial(LSTMStack, hidden_size=4, bidirectional=True),
                              spec=data.spec, tbptt_steps=4, gradient_clip_val=None)
        _fit_one_batch(model, batch)


def test_stream_chunks_rows_continue_across_batches_and_processes():
    stream = torch.arange(1000)
    chunks = StreamChunks([{"inputs": stream[:600]}, {"inputs": stream[600:]}], rows=4, chunk_len=10)
    assert len(chunks) == 4 * 25  # 250 steps per row, 25 chunks of 10
    # one process taking 4 rows at a time, in order
    batches = [[chunks[i]["inputs"] for i in b] for b in LengthBucketSampler(len(chunks), 4, shuffle=False)]
    for r in range(4):
        row = torch.cat([b[r] for b in batches])
        torch.testing.assert_close(row, stream[r * 250 : (r + 1) * 250])
    # two processes with 2 rows each see the same rows, each continuing on its own process
    for rank in range(2):
        sampler = LengthBucketSampler(len(chunks), 2, shuffle=False, num_replicas=2, rank=rank)
        mine = [[chunks[i]["inputs"] for i in b] for b in sampler]
        for r in range(2):
            torch.testing.assert_close(torch.cat([b[r] for b in mine]), stream[(2 * rank + r) * 250 : (2 * rank + r + 1) * 250])
    with pytest.raises(SeqkitError, match="too short"):
        StreamChunks([{"inputs": stream[:30]}], rows=4, chunk_len=10)


def _stream_data(**kwargs):
    data = EmbeddedReberData(stream=True, num_train=40, num_val=40, chunk_len=7, loader={"batch_size": 3}, **kwargs)
    data.setup("fit")
    return data


def test_stateful_stream_model_carries_state_between_batches():
    data = _stream_data()
    assert data.spec.stateful
    model = _model(data, LongLagStepHead)
    batches = list(data.train_dataloader())[:4]  # the base loader keeps a stateful stream in order
    with torch.no_grad():
        outs = [model._encode_stage(batch, "val", i).outputs for i, batch in enumerate(batches)]
        whole = data.collate([{"inputs": torch.cat([b.inputs[r] for b in batches]),
                               "targets": torch.cat([b.targets[r] for b in batches])} for r in range(3)])
        torch.testing.assert_close(torch.cat(outs, 1), model.encode(whole).outputs)
        # the first batch of an epoch starts from zeros again
        torch.testing.assert_close(model._encode_stage(batches[0], "val", 0).outputs, outs[0])
        # a batch with other rows than the one before it cannot continue it
        with pytest.raises(SeqkitError, match="same number of rows"):
            model._encode_stage(data.collate([data.train_set[0]]), "val", 1)


def test_stateful_tbptt_carries_state_across_batches_and_resets_each_epoch():
    data = _stream_data()
    k, chunk = 4, 7
    model = _model(data, LongLagStepHead, tbptt_steps=k)
    calls = []  # (epoch, state passed in, state returned) of every encode during training
    encode = model.encode

    def recording(batch, state=None):
        enc = encode(batch, state)
        if model.training:
            calls.append((model.current_epoch, state, tuple(s.detach().clone() for s in enc.state)))
        return enc

    model.encode = recording
    n = len(data.train_dataloader())
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=data.train_dataloader())
    per_batch = -(-chunk // k)
    assert len(calls) == 2 * n * per_batch and trainer.global_step == 2 * n * per_batch
    for c, (epoch, given, _) in enumerate(calls):
        first_of_epoch = c % (n * per_batch) == 0
        assert epoch == c // (n * per_batch)
        if first_of_epoch:
            assert given is None, c  # every epoch starts from zeros
        else:  # the previous window's (or batch's) final state, detached
            for g, prev in zip(given, calls[c - 1][2]):
                assert not g.requires_grad
                torch.testing.assert_close(g, prev)


def test_cli_tbptt_with_scheduler_and_clipping(tmp_path):
    """The stream config trains under TBPTT through the real CLI with an epoch LR scheduler; the
    clipping is the model's, the Trainer's stays unset."""
    from seqkit.cli import SeqkitCLI

    cli = SeqkitCLI(args=[
        "fit", "--config", str(CONFIGS / "longlag" / "reber_stream.yaml"),
        "--data.init_args.num_train=64", "--data.init_args.num_val=32", "--data.init_args.chunk_len=20",
        "--model.tbptt_steps=10", "--model.rnn.init_args.hidden_size=8", "--trainer.max_epochs=2",
        "--lr_scheduler=StepLR", "--lr_scheduler.step_size=1", "--lr_scheduler.gamma=0.5",
        "--trainer.enable_checkpointing=false", *logger_args(tmp_path),
    ])
    trainer = cli.trainer
    batches = len(cli.datamodule.train_dataloader())
    assert trainer.global_step == 2 * batches * 2  # 2 epochs x batches x 2 windows of 10 steps
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01 * 0.25)
    assert trainer.gradient_clip_val is None and cli.model.gradient_clip_val == 1.0
