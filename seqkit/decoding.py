"""Autoregressive decoding shared by every generating head: greedy search and beam search.

Both are batched over sentences (no per-sentence Python loop) and drive a model through one
``step`` callable, so a translation decoder and a captioning decoder reuse the same code:

    step(tokens, state) -> (log_probs, new_state, attention)
        tokens     (N,) LongTensor: the previous output token of every live row
        log_probs  (N, V): log-probabilities of the next token
        new_state  the decoder's state after the step
        attention  (N, S) attention weights over the S source positions, or None

``state`` is any nested tuple / list / dict of tensors (``None`` leaves allowed) whose first
dimension is N, the number of rows: beam search repeats it per beam and reorders it with
``index_select`` along dim 0. Keep an LSTM's (layers, N, H) state transposed to (N, layers, H).

Beam search follows the usual NMT recipe (Sutskever et al. 2014; Koehn 2004 for the search):
hypotheses that emit ``<eos>`` stay in the beam with a frozen score and compete with the live
ones, the search runs until every beam of every sentence is finished or the maximum length is
reached, and the final pick divides the total log-probability by ``length ** length_penalty``
(fairseq's ``--lenpen``; 0 ranks by raw log-probability, 1 by the mean per token). The top-k is
taken per beam first and then over the k*k candidates: the same result as one top-k over k*V,
cheaper, and with beam size 1 it does exactly greedy search's arithmetic, so the two agree bit
for bit.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

StepFn = Callable[[torch.Tensor, Any], "tuple[torch.Tensor, Any, torch.Tensor | None]"]


class Hypotheses(NamedTuple):
    """Decoded output, one hypothesis per sentence. Letters: B sentences, L steps, S source positions."""

    tokens: torch.Tensor
    """(B, L) token ids without <bos>; after a hypothesis ends (its <eos>, or the maximum length)
    the row holds ``pad_id`` (by default the <eos> id, so ``Vocab.decode`` stops there)."""
    scores: torch.Tensor
    """(B,) total log-probability of each hypothesis (its tokens including <eos>), no length penalty."""
    lengths: torch.Tensor
    """(B,) number of tokens in each hypothesis, counting its <eos> when it emitted one."""
    attention: torch.Tensor | None
    """(B, L, S) attention of each output step over the source (zeros past the end), or None."""


def map_state(state: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor in a nested tuple / list / dict state (None leaves kept)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(map_state(v, fn) for v in state))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(v, fn) for v in state)
    return state  # plain Python values (ints, strings) are shared by every row


def _max_lengths(max_len: int | torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    if isinstance(max_len, torch.Tensor):
        limit = max_len.to(device=device, dtype=torch.long).reshape(-1)
        if limit.numel() == 1:
            limit = limit.expand(batch_size)
        if limit.numel() != batch_size:
            raise ValueError(f"max_len has {limit.numel()} entries for {batch_size} sentences")
    else:
        limit = torch.full((batch_size,), int(max_len), dtype=torch.long, device=device)
    return limit.clamp(min=1)


def _state_device(state: Any) -> torch.device:
    found: list[torch.device] = []
    map_state(state, lambda t: found.append(t.device) or t)
    return found[0] if found else torch.device("cpu")


def greedy_search(
    step: StepFn,
    state: Any,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    max_len: int | torch.Tensor,
    pad_id: int | None = None,
) -> Hypotheses:
    """Pick the most probable token at every step, for all ``batch_size`` sentences at once.

    Args:
        step: The decoder step (see the module docstring).
        state: Initial decoder state, first dimension ``batch_size``.
        batch_size: Number of sentences B.
        bos_id: Token fed at the first step.
        eos_id: Token that ends a hypothesis.
        max_len: Most output tokens per sentence: an int, or a (B,) tensor (for instance a ratio
            of each source length).
        pad_id: Token written after a hypothesis ends (default: ``eos_id``).
    """
    device = _state_device(state)
    pad = eos_id if pad_id is None else pad_id
    limit = _max_lengths(max_len, batch_size, device)  # (B,)
    L = int(limit.max())
    tokens = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    scores = torch.zeros(batch_size, dtype=torch.float32, device=device)
    lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
    out_tokens: list[torch.Tensor] = []
    out_attn: list[torch.Tensor] = []
    has_attn = True
    for t in range(L):
        log_probs, state, attn = step(tokens, state)
        best_lp, best = log_probs.float().topk(1, dim=-1)  # (B, 1): topk, as beam search uses
        best_lp, best = best_lp.squeeze(1), best.squeeze(1)
        live = ~done & (t < limit)
        tokens = torch.where(live, best, torch.full_like(best, pad))
        scores = scores + torch.where(live, best_lp, torch.zeros_like(best_lp))
        lengths = lengths + live.long()
        done = done | ~live | (best == eos_id) | (t + 1 >= limit)
        out_tokens.append(tokens)
        if attn is None:
            has_attn = False
        elif has_attn:
            out_attn.append(attn.float() * live.unsqueeze(1).to(torch.float32))
        if bool(done.all()):
            break
    return Hypotheses(
        tokens=torch.stack(out_tokens, 1),  # (B, L)
        scores=scores,
        lengths=lengths,
        attention=torch.stack(out_attn, 1) if has_attn and out_attn else None,  # (B, L, S)
    )


def beam_search(
    step: StepFn,
    state: Any,
    batch_size: int,
    beam_size: int,
    bos_id: int,
    eos_id: int,
    max_len: int | torch.Tensor,
    length_penalty: float = 1.0,
    pad_id: int | None = None,
) -> Hypotheses:
    """Keep the ``beam_size`` most probable hypotheses of every sentence; return the best of each.

    Args:
        step: The decoder step (see the module docstring); it sees B * beam_size rows.
        state: Initial decoder state, first dimension ``batch_size`` (repeated per beam here).
        batch_size: Number of sentences B.
        beam_size: Hypotheses kept per sentence, K; 1 is exactly greedy search.
        bos_id: Token fed at the first step.
        eos_id: Token that ends a hypothesis.
        max_len: Most output tokens per sentence: an int or a (B,) tensor.
        length_penalty: The final pick ranks ``log_prob / length ** length_penalty``: 0 favours
            short outputs (raw log-probability), 1 ranks by the mean log-probability per token.
        pad_id: Token written after a hypothesis ends (default: ``eos_id``).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    B, K = batch_size, beam_size
    device = _state_device(state)
    pad = eos_id if pad_id is None else pad_id
    limit = _max_lengths(max_len, B, device)  # (B,)
    L = int(limit.max())
    state = map_state(state, lambda x: x.repeat_interleave(K, dim=0))  # rows b*K + k
    tokens = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    scores = torch.zeros(B, K, dtype=torch.float32, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: let only the first one expand
    done = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    history = torch.zeros(B, K, 0, dtype=torch.long, device=device)  # (B, K, t)
    attn_hist: torch.Tensor | None = None  # (B, K, t, S)
    has_attn = True
    base = (torch.arange(B, device=device) * K).unsqueeze(1)  # (B, 1)
    for t in range(L):
        log_probs, state, attn = step(tokens, state)
        V = log_probs.shape[-1]
        top_lp, top_tok = log_probs.float().topk(min(K, V), dim=-1)  # (B*K, k) best per beam
        k = top_lp.shape[-1]
        top_lp, top_tok = top_lp.view(B, K, k), top_tok.view(B, K, k)
        live = ~done & (t < limit).unsqueeze(1)  # (B, K)
        # an ended beam has one continuation, pad at no cost, so it keeps its score and its slot
        frozen_lp = torch.full_like(top_lp, float("-inf"))
        frozen_lp[..., 0] = 0.0
        top_lp = torch.where(live.unsqueeze(-1), top_lp, frozen_lp)
        top_tok = torch.where(live.unsqueeze(-1), top_tok, torch.full_like(top_tok, pad))
        cand = scores.unsqueeze(-1) + top_lp  # (B, K, k)
        new_scores, flat = cand.view(B, K * k).topk(K, dim=-1)  # (B, K)
        origin = torch.div(flat, k, rounding_mode="floor")  # (B, K) beam each winner extends
        new_tok = top_tok.view(B, K * k).gather(1, flat)  # (B, K)
        was_live = live.gather(1, origin)
        scores = new_scores
        lengths = lengths.gather(1, origin) + was_live.long()
        done = done.gather(1, origin) | ~was_live | (new_tok == eos_id) | (t + 1 >= limit).unsqueeze(1)
        history = torch.cat([history.gather(1, origin.unsqueeze(-1).expand(-1, -1, t)), new_tok.unsqueeze(-1)], 2)
        rows = (base + origin).view(-1)  # (B*K,) rows of the state each winner continues
        if attn is None:
            has_attn = False
        elif has_attn:
            S = attn.shape[-1]
            a = attn.float().view(B, K, S).gather(1, origin.unsqueeze(-1).expand(-1, -1, S))
            a = (a * was_live.unsqueeze(-1).to(a.dtype)).unsqueeze(2)  # (B, K, 1, S)
            if attn_hist is None:
                attn_hist = a
            else:
                attn_hist = torch.cat([attn_hist.gather(1, origin.view(B, K, 1, 1).expand(-1, -1, t, S)), a], 2)
        tokens = new_tok.view(-1)
        if bool(done.all()):
            break
        state = map_state(state, lambda x: x.index_select(0, rows))
    # final pick: the best length-normalised score among each sentence's K hypotheses
    norm = scores / lengths.clamp(min=1).to(scores.dtype).pow(length_penalty) if length_penalty else scores
    best = norm.argmax(1)  # (B,)
    pick = best.view(B, 1)
    T = history.shape[2]
    return Hypotheses(
        tokens=history.gather(1, pick.unsqueeze(-1).expand(-1, -1, T)).squeeze(1),  # (B, L)
        scores=scores.gather(1, pick).squeeze(1),
        lengths=lengths.gather(1, pick).squeeze(1),
        attention=(
            attn_hist.gather(1, pick.view(B, 1, 1, 1).expand(-1, -1, T, attn_hist.shape[-1])).squeeze(1)
            if has_attn and attn_hist is not None
            else None
        ),
    )
