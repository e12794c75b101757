"""seqkit.seq2seq, the kit both generating plugins share: attention masks, the decoder's one-step
protocol agreeing with teacher forcing in both attention placements, and the AttentionPlot callback
drawing what a head records (and nothing without it)."""

from __future__ import annotations

import pytest
import torch

import seqkit
from seqkit import SeqkitError
from seqkit.seq2seq import (
    Attention,
    AttentionDecoder,
    AttentionLog,
    AttentionMap,
    AttentionPlot,
    DecoderState,
    Hypotheses,
    beam_search,
    greedy_search,
)

V, D, N, S = 11, 12, 4, 6


def test_the_public_names_are_the_kit_s():
    assert seqkit.beam_search is beam_search and seqkit.greedy_search is greedy_search
    assert seqkit.Hypotheses is Hypotheses
    assert sorted(seqkit.seq2seq.__all__) == seqkit.seq2seq.__all__


@pytest.mark.parametrize("kind", ["dot", "general", "additive"])
def test_attention_ignores_masked_steps(kind):
    torch.manual_seed(0)
    att = Attention(kind, D, D, 8)
    memory = torch.randn(N, S, D)
    mask = torch.arange(S).unsqueeze(0) < torch.tensor([6, 3, 1, 4]).unsqueeze(1)
    query = torch.randn(N, D)
    context, weights = att(query, att.keys(memory), memory, mask)
    assert context.shape == (N, D) and weights.shape == (N, S)
    assert torch.allclose(weights.sum(-1), torch.ones(N)) and (weights[~mask] == 0).all()
    noisy = memory.masked_fill(~mask.unsqueeze(-1), 50.0)  # padding holds anything
    c2, w2 = att(query, att.keys(noisy), noisy, mask)
    assert torch.allclose(c2, context, atol=1e-6) and torch.allclose(w2, weights, atol=1e-6)
    # T queries at once give what T single queries give
    many = torch.randn(N, 3, D)
    c3, w3 = att(many, att.keys(memory), memory, mask)
    assert torch.allclose(c3[:, 1], att(many[:, 1], att.keys(memory), memory, mask)[0], atol=1e-6)


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(SeqkitError, match="'dot' needs the decoder size"):
        Attention("dot", 8, 16)
    with pytest.raises(SeqkitError, match="context gate"):
        AttentionDecoder(V, D, attention="general", placement="output", context_gate=True)


DECODERS = {
    "luong": dict(attention="general", placement="output", input_feeding=True),
    "luong-fast": dict(attention="additive", placement="output", input_feeding=False),
    "sutskever": dict(attention="none", placement="output", input_feeding=False, bridge="zero"),
    "xu": dict(attention="additive", placement="input", input_feeding=False, context_gate=True),
    "show-tell": dict(attention="none", placement="input", input_feeding=False),
    "tied": dict(attention="dot", placement="output", input_feeding=True, tie_embeddings=True),
}


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_teacher_forcing_equals_stepping(name):
    """The logits of a whole teacher-forced sequence are those of one step at a time, the way
    search calls the decoder; beam size 1 reproduces greedy search exactly."""
    torch.manual_seed(0)
    dec = AttentionDecoder(V, D, embedding_dim=8, hidden_size=D, num_layers=2, **DECODERS[name]).eval()
    memory = torch.randn(N, S, D)
    lengths = torch.tensor([6, 2, 5, 1])
    state = dec.start(memory, lengths)
    assert isinstance(state, DecoderState) and state.h.shape == (N, 2, D)
    inputs = torch.randint(0, V, (N, 5))
    with torch.no_grad():
        whole, weights = dec.teacher_forced(state, inputs)
        st, steps = state, []
        for t in range(inputs.shape[1]):
            logits, st, w = dec.step(inputs[:, t], st)
            steps.append(logits)
        assert torch.allclose(whole, torch.stack(steps, 1), atol=1e-5)
        assert (weights is None) == (DECODERS[name]["attention"] == "none")
        if weights is not None:
            assert weights.shape == (N, 5, S) and (weights[1, :, 2:] == 0).all()  # masked memory steps
        greedy = dec.generate(state, 1, 2, 7)
        beam1 = dec.generate(state, 1, 2, 7, beam_size=1)
        beam3 = dec.generate(state, 1, 2, torch.tensor([3, 7, 5, 2]), beam_size=3)
    assert torch.equal(greedy.tokens, beam1.tokens)
    assert (beam3.lengths <= torch.tensor([3, 7, 5, 2])).all()
    # rows() picks rows of every tensor (several targets per input)
    sub = state.rows(torch.tensor([2, 2, 0]))
    assert sub.h.shape[0] == 3 and torch.equal(sub.h[0], state.h[2])


def test_scheduled_sampling_only_in_training():
    torch.manual_seed(0)
    dec = AttentionDecoder(V, D, embedding_dim=8, hidden_size=D, attention="general")
    state = dec.start(torch.randn(N, S, D))
    inputs = torch.randint(0, V, (N, 6))
    dec.eval()
    with torch.no_grad():
        a, _ = dec.teacher_forced(state, inputs, teacher_forcing=0.0)
        b, _ = dec.teacher_forced(state, inputs, teacher_forcing=1.0)
    assert torch.equal(a, b)  # evaluation always reads the reference
    dec.train()
    with torch.no_grad():
        c, _ = dec.teacher_forced(state, inputs, teacher_forcing=0.0)
    assert not torch.allclose(c[:, 1:], b[:, 1:])  # training fed the decoder its own guesses


class _Encoder(torch.nn.Module):
    grid = (2, 3)


class _Module:
    """What AttentionPlot reads from the LightningModule: its head and its encoder."""

    def __init__(self, head):
        self.head, self.encoder = head, _Encoder()


class _Trainer:
    log_dir = None
    default_root_dir = "."


def test_attention_plot_draws_what_the_head_records(tmp_path):
    class Head:
        attention_log = None

    head = Head()
    module = _Module(head)
    cb = AttentionPlot(dirpath=str(tmp_path), indices=[1, 3])
    cb.on_predict_start(_Trainer(), module)
    log = head.attention_log
    assert isinstance(log, AttentionLog) and log.wants(3) and not log.wants(0)
    log.add(AttentionMap(1, ["um", "carro", "<eos>"], torch.rand(3, 2), source=["one", "car"]))
    log.add(AttentionMap(3, ["a", "red", "square"], torch.rand(3, 6).softmax(-1), image=torch.rand(3, 16, 24),
                         name="photos/cat 1.png"))
    cb.on_predict_batch_end(_Trainer(), module, None, None, 0)
    cb.on_predict_end(_Trainer(), module)
    assert head.attention_log is None  # nothing kept once predict is over
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["attention_predict_1.png", "attention_predict_3-cat_1.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
    # a stage the callback does not draw leaves the head without a log
    cb2 = AttentionPlot(dirpath=str(tmp_path), stages=["predict"])
    cb2.on_test_start(_Trainer(), module)
    assert head.attention_log is None
