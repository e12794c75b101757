"""Autoregressive decoding shared by every generating head: greedy search and beam search.

Both are batched over inputs (no per-sentence Python loop) and drive a decoder through one
``step`` callable (:meth:`seqkit.seq2seq.AttentionDecoder.search_step` is one), so the
translation head and the captioning head run the same code:

    step(tokens, state) -> (log_probs, new_state, attention)
        tokens     (N,) LongTensor: the previous output token of every live row
        log_probs  (N, V): log-probabilities of the next token
        new_state  the decoder's state after the step
        attention  (N, S) attention weights over the S memory steps (source words, image
                   regions), or None

``state`` is any nested tuple / NamedTuple / list / dict of tensors (``None`` leaves allowed)
whose first dimension is N, the number of rows: beam search repeats it per beam and reorders it
with ``index_select`` along dim 0. Keep an LSTM's (layers, N, H) state transposed to (N, layers, H)
(:class:`seqkit.seq2seq.DecoderState` does).

Beam search follows the usual NMT recipe (Sutskever et al. 2014; fairseq's ``SequenceGenerator``
for the bookkeeping): every step keeps the K best hypotheses that continue, taken from the 2K
best candidates, so an ending hypothesis never costs the beam a slot. An ``<eos>`` candidate
among the K best ends a hypothesis, which is kept when its score, divided by
``length ** length_penalty`` (fairseq's ``--lenpen``: 0 ranks by raw log-probability, 1 by the
mean per token), beats the input's best so far. An input stops at its length limit or when no
live hypothesis can beat its best ended one — exact for ``length_penalty`` 0, since
log-probabilities only fall. The top-k is taken per beam first and then over the k*2k candidates:
the same result as one top-k over k*V, cheaper, and with beam size 1 it does exactly greedy
search's arithmetic, so the two agree bit for bit.

Both searches take the decoding constraints of OpenNMT-py's translator: ``min_length`` (no
``<eos>`` before that many tokens) and ``block_ngram_repeat`` (no n-gram of that size twice in one
hypothesis: the token that would repeat one gets probability zero). Beam search also ranks ended
hypotheses with a length penalty: ``avg`` divides the log-probability by ``length ** alpha``,
``wu`` by Wu et al.'s (2016, GNMT) ``((5 + length) / 6) ** alpha``.
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


def constrain(log_probs: torch.Tensor, t: int, history: torch.Tensor | None, eos_id: int,
              min_length: int = 0, block_ngram_repeat: int = 0) -> torch.Tensor:
    """``log_probs`` (N, V) of step ``t`` with the tokens the constraints forbid set to -inf.

    :param history: (N, t) the tokens each row has output so far (without <bos>).
    :param min_length: <eos> is forbidden while fewer than this many tokens are out.
    :param block_ngram_repeat: n > 0: a token that would complete an n-gram already in the row's
        history is forbidden (n = 1 forbids every token already output).
    """
    if t < min_length:
        log_probs = log_probs.clone()
        log_probs[:, eos_id] = float("-inf")
    n = block_ngram_repeat
    if n > 0 and history is not None and t >= n:
        windows = history.unfold(1, n, 1)  # (N, t - n + 1, n) every n-gram so far
        suffix = history[:, t - n + 1:]  # (N, n - 1) what the next token would extend
        match = (windows[:, :, :-1] == suffix.unsqueeze(1)).all(-1)  # (N, W)
        banned = torch.zeros_like(log_probs, dtype=torch.int32).scatter_add_(
            1, windows[:, :, -1], match.to(torch.int32))
        log_probs = log_probs.masked_fill(banned > 0, float("-inf"))
    return log_probs


def length_normaliser(length: int, alpha: float, kind: str = "avg") -> float:
    """What beam search divides an ended hypothesis's log-probability by: ``length ** alpha``
    (``avg``) or ``((5 + length) / 6) ** alpha`` (``wu``, Wu et al. 2016); 1 when alpha is 0."""
    if kind not in ("avg", "wu"):
        raise ValueError(f"unknown length penalty {kind!r}; choose avg or wu")
    if not alpha:
        return 1.0
    return ((5.0 + length) / 6.0) ** alpha if kind == "wu" else float(length) ** alpha


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
    *,
    min_length: int = 0,
    block_ngram_repeat: int = 0,
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
        min_length: No <eos> before this many tokens (see :func:`constrain`).
        block_ngram_repeat: No repeated n-gram of this size (0: off; see :func:`constrain`).
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
        if min_length or block_ngram_repeat:
            history = torch.stack(out_tokens, 1) if out_tokens else None
            log_probs = constrain(log_probs.float(), t, history, eos_id, min_length, block_ngram_repeat)
        top_lp, top = log_probs.float().topk(min(2, log_probs.shape[-1]), dim=-1)  # the call beam search makes
        best_lp, best = top_lp[:, 0], top[:, 0]
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
    *,
    length_penalty_kind: str = "avg",
    min_length: int = 0,
    block_ngram_repeat: int = 0,
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
        length_penalty: alpha of the length penalty; the final pick ranks ``log_prob /
            length ** alpha`` (``avg``): 0 favours short outputs (raw log-probability), 1 ranks by
            the mean log-probability per token.
        pad_id: Token written after a hypothesis ends (default: ``eos_id``).
        length_penalty_kind: "avg" (above) or "wu": ``log_prob / ((5 + length) / 6) ** alpha``
            (Wu et al. 2016).
        min_length: No <eos> before this many tokens (see :func:`constrain`).
        block_ngram_repeat: No repeated n-gram of this size in a hypothesis (0: off).
    """
    length_normaliser(1, length_penalty, length_penalty_kind)  # rejects an unknown kind early
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    B, K = batch_size, beam_size
    device = _state_device(state)
    pad = eos_id if pad_id is None else pad_id
    limit = _max_lengths(max_len, B, device)  # (B,)
    L = int(limit.max())
    neg_inf = float("-inf")
    state = map_state(state, lambda x: x.repeat_interleave(K, dim=0))  # rows b*K + k
    tokens = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    scores = torch.zeros(B, K, dtype=torch.float32, device=device)
    scores[:, 1:] = neg_inf  # all beams start identical: let only the first one expand
    history = torch.zeros(B, K, 0, dtype=torch.long, device=device)  # (B, K, t) live hypotheses
    attn_hist: torch.Tensor | None = None  # (B, K, t, S)
    has_attn = True
    # the best finished hypothesis of each sentence so far
    best_tokens = torch.full((B, L), pad, dtype=torch.long, device=device)
    best_scores = torch.full((B,), neg_inf, dtype=torch.float32, device=device)
    best_norm = torch.full((B,), neg_inf, dtype=torch.float32, device=device)
    best_lengths = torch.zeros(B, dtype=torch.long, device=device)
    best_attn: torch.Tensor | None = None  # (B, L, S)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    base = (torch.arange(B, device=device) * K).unsqueeze(1)  # (B, 1)
    rows_b = torch.arange(B, device=device)
    for t in range(L):
        log_probs, state, attn = step(tokens, state)
        if min_length or block_ngram_repeat:
            log_probs = constrain(log_probs.float(), t, history.view(B * K, t), eos_id, min_length, block_ngram_repeat)
        V = log_probs.shape[-1]
        C = min(2 * K, V)
        top_lp, top_tok = log_probs.float().topk(C, dim=-1)  # (B*K, C): the best 2K per beam suffice
        cand = (scores.unsqueeze(-1) + top_lp.view(B, K, C)).view(B, K * C)
        # the 2K best candidates, best first; the stable sort breaks ties by beam, then by rank
        cand_scores, order = cand.sort(dim=-1, descending=True, stable=True)
        cand_scores, order = cand_scores[:, : 2 * K], order[:, : 2 * K]  # (B, 2K)
        origin = torch.div(order, C, rounding_mode="floor")  # (B, 2K) beam each candidate extends
        cand_tok = top_tok.view(B, K * C).gather(1, order)  # (B, 2K)
        N2 = cand_tok.shape[1]
        rank = torch.arange(N2, device=device).unsqueeze(0)  # (1, 2K)
        is_eos = cand_tok == eos_id
        finite = torch.isfinite(cand_scores)
        # the K best candidates that do not end carry on (each beam offers one <eos> at most, so
        # 2K candidates hold K that continue)
        live_pos = torch.where(is_eos, rank + N2, rank).argsort(dim=1)[:, :K]  # (B, K)
        live_ok = ~is_eos.gather(1, live_pos) & finite.gather(1, live_pos)
        continuing = torch.zeros_like(is_eos).scatter(1, live_pos, live_ok)
        at_limit = t + 1 >= limit  # (B,): this step is the sentence's last
        # what ends now: an <eos> among the K best (it would have taken a beam); at the length
        # limit, the continuing ones too. All end at length t + 1, so the first one in score
        # order is also the best after length normalisation.
        ending = ((is_eos & (rank < K)) | (continuing & at_limit.unsqueeze(1))) & finite & ~done.unsqueeze(1)
        first = torch.where(ending, rank, rank + N2).argmin(1)  # (B,)
        has_end = ending.any(1)
        end_score = cand_scores[rows_b, first]
        norm = length_normaliser(t + 1, length_penalty, length_penalty_kind)
        end_norm = end_score / norm
        better = has_end & (end_norm > best_norm)
        b_idx = better.nonzero(as_tuple=True)[0]
        if b_idx.numel():
            c_idx = first[b_idx]
            o_idx = origin[b_idx, c_idx]
            best_tokens[b_idx] = pad
            best_tokens[b_idx, :t] = history[b_idx, o_idx]
            best_tokens[b_idx, t] = cand_tok[b_idx, c_idx]
            best_scores[b_idx], best_norm[b_idx] = end_score[b_idx], end_norm[b_idx]
            best_lengths[b_idx] = t + 1
        if attn is None:
            has_attn = False
        elif has_attn:
            S = attn.shape[-1]
            if best_attn is None:
                best_attn = torch.zeros(B, L, S, dtype=torch.float32, device=device)
            if b_idx.numel():
                best_attn[b_idx] = 0.0
                if t:
                    best_attn[b_idx, :t] = attn_hist[b_idx, o_idx]
                best_attn[b_idx, t] = attn.float().view(B, K, S)[b_idx, o_idx]
        # a sentence is done at its limit, or once no live hypothesis can beat its best finished
        # one: log-probabilities only fall, so with length_penalty 0 this test is exact (with a
        # penalty it assumes the current length, as Hugging Face's default does)
        live_best = torch.where(live_ok, cand_scores.gather(1, live_pos), torch.full_like(scores, neg_inf)).amax(1)
        live_bound = live_best / norm
        done = done | at_limit | (live_bound <= best_norm)
        if bool(done.all()):
            break
        # carry on with the continuing candidates
        live_origin = origin.gather(1, live_pos)  # (B, K)
        new_tok = cand_tok.gather(1, live_pos)
        scores = torch.where(live_ok, cand_scores.gather(1, live_pos), torch.full_like(scores, neg_inf))
        history = torch.cat([history.gather(1, live_origin.unsqueeze(-1).expand(-1, -1, t)), new_tok.unsqueeze(-1)], 2)
        if has_attn and attn is not None:
            S = attn.shape[-1]
            a = attn.float().view(B, K, S).gather(1, live_origin.unsqueeze(-1).expand(-1, -1, S)).unsqueeze(2)
            attn_hist = a if attn_hist is None else torch.cat(
                [attn_hist.gather(1, live_origin.view(B, K, 1, 1).expand(-1, -1, t, S)), a], 2)  # (B, K, t+1, S)
        tokens = new_tok.view(-1)
        rows = (base + live_origin).view(-1)  # (B*K,) rows of the state each hypothesis continues
        state = map_state(state, lambda x: x.index_select(0, rows))
    T = max(1, int(best_lengths.max()))
    return Hypotheses(
        tokens=best_tokens[:, :T],  # (B, T)
        scores=best_scores,
        lengths=best_lengths,
        attention=best_attn[:, :T] if has_attn and best_attn is not None else None,
    )
