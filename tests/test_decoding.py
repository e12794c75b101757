"""seqkit.seq2seq.search (re-exported as seqkit.greedy_search, seqkit.beam_search): greedy and beam
search over a toy recurrent decoder (no training needed).

The toy decoder is a random GRU cell with attention over random "source" vectors, so its output
distribution depends on the whole history and on the source, like a real decoder's.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from seqkit import Hypotheses, beam_search, greedy_search

BOS, EOS, V = 1, 2, 7


class ToyDecoder(nn.Module):
    def __init__(self, seed: int = 0, hidden: int = 16, eos_bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(V, hidden)
        self.cell = nn.GRUCell(2 * hidden, hidden)
        self.out = nn.Linear(2 * hidden, V)
        with torch.no_grad():
            self.out.bias[EOS] += eos_bias
            self.out.weight.mul_(3.0)  # peaked distributions, so search choices matter

    def initial(self, memory: torch.Tensor) -> dict:
        N, S, H = memory.shape
        return {"h": memory.mean(1), "memory": memory, "extra": None}

    def step(self, tokens: torch.Tensor, state: dict):
        h, memory = state["h"], state["memory"]  # (N, H), (N, S, H)
        attn = torch.softmax(torch.einsum("nh,nsh->ns", h, memory), -1)  # (N, S)
        ctx = torch.einsum("ns,nsh->nh", attn, memory)
        h = self.cell(torch.cat([self.emb(tokens), ctx], -1), h)
        log_probs = torch.log_softmax(self.out(torch.cat([h, ctx], -1)), -1)  # (N, V)
        return log_probs, {"h": h, "memory": memory, "extra": None}, attn


def _setup(B=6, S=5, seed=0, eos_bias=0.0):
    dec = ToyDecoder(seed, eos_bias=eos_bias)
    memory = torch.randn(B, S, 16, generator=torch.Generator().manual_seed(seed + 100))
    return dec, dec.initial(memory)


def _score(dec, memory_state, seq: list[int]) -> float:
    """Log-probability the toy decoder gives ``seq`` (one sentence, state rows of size 1)."""
    state, tok, total = memory_state, torch.tensor([BOS]), 0.0
    for t in seq:
        lp, state, _ = dec.step(tok, state)
        total += float(lp[0, t])
        tok = torch.tensor([t])
    return total


@torch.no_grad()
@pytest.mark.parametrize("seed", range(4))
def test_beam_size_one_equals_greedy_exactly(seed):
    dec, state = _setup(seed=seed)
    limit = torch.tensor([1, 3, 4, 6, 8, 8])
    g = greedy_search(dec.step, state, 6, BOS, EOS, max_len=limit)
    b = beam_search(dec.step, state, 6, 1, BOS, EOS, max_len=limit, length_penalty=0.7)
    assert isinstance(g, Hypotheses)
    assert torch.equal(g.tokens, b.tokens)
    assert torch.equal(g.lengths, b.lengths)
    assert torch.equal(g.scores, b.scores)
    assert torch.equal(g.attention, b.attention)
    assert (g.lengths <= limit).all() and (g.lengths >= 1).all()


@torch.no_grad()
def test_scores_are_the_log_probability_of_the_returned_tokens():
    dec, state = _setup(seed=3, eos_bias=1.0)
    for hyp in (greedy_search(dec.step, state, 6, BOS, EOS, 7), beam_search(dec.step, state, 6, 3, BOS, EOS, 7, 0.0)):
        for b in range(6):
            n = int(hyp.lengths[b])
            seq = hyp.tokens[b, :n].tolist()
            assert EOS not in seq[:-1]
            assert (hyp.tokens[b, n:] == EOS).all()  # padded with eos (the default pad) after the end
            one = {"h": state["h"][b : b + 1], "memory": state["memory"][b : b + 1], "extra": None}
            assert hyp.scores[b].item() == pytest.approx(_score(dec, one, seq), abs=1e-4)


@torch.no_grad()
def test_beam_finds_the_exhaustive_optimum_on_short_outputs():
    """With a beam as wide as the vocabulary over 2 steps, beam search is exhaustive."""
    dec, state = _setup(B=3, seed=5, eos_bias=0.5)
    hyp = beam_search(dec.step, state, 3, V, BOS, EOS, max_len=2, length_penalty=0.0)
    for b in range(3):
        one = {"h": state["h"][b : b + 1], "memory": state["memory"][b : b + 1], "extra": None}
        # every output of at most 2 tokens: (eos), (x, eos), (x, y) with x, y != eos
        cands = [[EOS]] + [[x, EOS] for x in range(V) if x != EOS]
        cands += [[x, y] for x, y in itertools.product(range(V), repeat=2) if EOS not in (x, y)]
        best = max(_score(dec, one, c) for c in cands)
        assert hyp.scores[b].item() == pytest.approx(best, abs=1e-4)


@torch.no_grad()
def test_wider_beam_is_not_worse_than_greedy_and_attention_shapes():
    dec, state = _setup(B=8, seed=7, eos_bias=0.5)
    g = greedy_search(dec.step, state, 8, BOS, EOS, 10)
    b = beam_search(dec.step, state, 8, 4, BOS, EOS, 10, length_penalty=0.0)
    assert (b.scores >= g.scores - 1e-5).all()
    assert b.attention.shape == (8, b.tokens.shape[1], 5)
    # attention rows sum to one on real steps and are zero after the end
    steps = torch.arange(b.tokens.shape[1]).unsqueeze(0) < b.lengths.unsqueeze(1)
    sums = b.attention.sum(-1)
    assert torch.allclose(sums[steps], torch.ones(int(steps.sum())), atol=1e-5)
    assert (sums[~steps] == 0).all()


def test_step_without_attention_gives_none():
    def step(tokens, state):
        N = tokens.shape[0]
        lp = torch.log_softmax(torch.arange(V, dtype=torch.float).repeat(N, 1), -1)  # always token V-1
        return lp, state, None

    state = (torch.zeros(2, 3), None)
    g = greedy_search(step, state, 2, BOS, EOS, torch.tensor([2, 4]))
    b = beam_search(step, state, 2, 3, BOS, EOS, torch.tensor([2, 4]))
    assert g.attention is None and b.attention is None
    assert g.lengths.tolist() == [2, 4] == b.lengths.tolist()
    assert g.tokens[0].tolist() == [V - 1, V - 1, EOS, EOS]
