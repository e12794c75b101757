"""An LSTM decoder with attention: what every generating head (translation, captioning) runs.

The decoder writes one token per step from the previous token, its recurrent state and,
with attention, a memory of S encoder steps (source words, image regions). Two ways to attend,
chosen with ``placement``:

* ``output`` (Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine
  Translation"): the LSTM steps first; its new top state h_t queries the memory, and the
  attentional state h̃_t = tanh(W_c [c_t; h_t]) feeds the output layer. With ``input_feeding``
  h̃_t also joins the next step's input, so the decoder knows where it looked before.
* ``input`` (Bahdanau, Cho & Bengio 2015; Xu et al. 2015, "Show, Attend and Tell"): the previous
  top state h_{t-1} queries the memory, the context c_t enters the LSTM with the word embedding,
  and the output layer reads [h_t; c_t]. ``context_gate`` scales c_t by Xu et al.'s learned gate
  β = σ(w · h_{t-1}) (their sec. 4.2.1).

Without attention the decoder is Sutskever, Vinyals & Le (2014) / Vinyals et al. (2015, "Show
and Tell"): the input only sets the initial state. That state comes from a ``bridge``, tanh(W s)
of a summary s of the input (the encoder's final state, or the mean of the memory), split into
every layer's (h, C); ``zero`` starts from zeros. The LSTM is seqkit's ``LSTMStack``
(Hochreiter & Schmidhuber 1997, forget-gate bias 1 as Gers et al. 2000 recommend).
``tie_embeddings`` shares the output layer with the target embedding (Press & Wolf 2017).

The decoder-step protocol is :meth:`AttentionDecoder.step` (``(N,)`` tokens and a
:class:`DecoderState` -> logits, new state, attention); :meth:`search_step` is the same in the
form ``seqkit.seq2seq.search`` drives, so greedy and beam search decode every head alike.
Training reads the reference shifted by one (teacher forcing); ``teacher_forcing`` < 1 feeds the
decoder's own previous prediction instead that share of the time (scheduled sampling, Bengio et
al. 2015).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from seqkit.errors import SeqkitError
from seqkit.lstm import LSTMStack
from seqkit.seq2seq.attention import Attention, AttentionKind
from seqkit.seq2seq.search import Hypotheses, beam_search, greedy_search, map_state
from seqkit.spec import length_mask

Placement = Literal["output", "input"]


class DecoderState(NamedTuple):
    """The decoder's state for N rows, every tensor batch-first so search can repeat and reorder
    rows. Letters: N rows, L layers, H hidden size, S memory steps, D memory size."""

    h: torch.Tensor
    """(N, L, H) every layer's h."""
    c: torch.Tensor
    """(N, L, H) every layer's cell state C."""
    feed: Optional[torch.Tensor]
    """(N, H) the previous attentional state (input feeding), else None."""
    memory: Optional[torch.Tensor]
    """(N, S, D) what attention reads; None without attention."""
    keys: Optional[torch.Tensor]
    """(N, S, ·) the memory's part of the attention score, computed once (``Attention.keys``)."""
    mask: Optional[torch.Tensor]
    """(N, S) True on real memory steps."""

    def rows(self, index: torch.Tensor) -> "DecoderState":
        """The state of rows ``index`` (N',): one input decoded several times (several reference
        captions of one image), or beams."""
        return map_state(self, lambda t: t.index_select(0, index))


class AttentionDecoder(nn.Module):
    """LSTM decoder with optional attention over a memory, input feeding and a tied output layer."""

    def __init__(
        self,
        vocab_size: int,
        memory_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: AttentionKind = "general",
        attention_size: Optional[int] = None,
        placement: Placement = "output",
        input_feeding: bool = True,
        context_gate: bool = False,
        bridge: Literal["dense", "zero"] = "dense",
        tie_embeddings: bool = False,
        pad_id: int = 0,
        where: str = "model.head.init_args",
    ) -> None:
        """
        Args:
            vocab_size: V, the number of output tokens.
            memory_size: D, the size of each memory step and of the bridge's summary.
            embedding_dim: E, the size of the target-token embeddings.
            hidden_size: H, the size of the decoder LSTM's state.
            num_layers: L, stacked decoder LSTM layers.
            dropout: Dropout on the embeddings, between LSTM layers and before the output layer.
            attention: "none", "dot", "general" or "additive" (see ``seqkit.seq2seq.attention``).
            attention_size: Hidden size of additive attention (default: hidden_size).
            placement: "output": attend with the new state (Luong et al. 2015); "input": attend
                with the previous state and feed the context to the LSTM (Bahdanau et al. 2015,
                Xu et al. 2015).
            input_feeding: Feed the previous attentional state into the next step (Luong et al.
                2015); placement "output" with attention only (ignored otherwise).
            context_gate: Scale the context by σ(w · h_{t-1}) (Xu et al. 2015); placement
                "input" only.
            bridge: "dense": the initial (h, C) of every layer is tanh(W s) of the input's
                summary s; "zero": zeros.
            tie_embeddings: Share the output layer's weights with the target embedding (Press &
                Wolf 2017), through a projection when its input is not E wide.
            pad_id: The padding token (embeds to zeros).
            where: The config key named in errors.
        """
        super().__init__()
        if placement not in ("output", "input"):
            raise SeqkitError(f"{where}: unknown attention placement {placement!r}; choose output or input")
        if bridge not in ("dense", "zero"):
            raise SeqkitError(f"{where}.bridge: unknown bridge {bridge!r}; choose dense or zero")
        attend = attention != "none"
        if context_gate and not (attend and placement == "input"):
            raise SeqkitError(f"{where}: the context gate (Xu et al. 2015) needs attention placed at the input")
        V, D, E, H, L = vocab_size, memory_size, embedding_dim, hidden_size, num_layers
        self.hidden_size, self.num_layers, self.placement = H, L, placement
        self.input_feeding = input_feeding and attend and placement == "output"
        self.context_in = attend and placement == "input"  # the context enters the LSTM and the output layer
        self.embedding = nn.Embedding(V, E, padding_idx=pad_id)
        lstm_in = E + (D if self.context_in else 0) + (H if self.input_feeding else 0)
        self.lstm = LSTMStack(lstm_in, hidden_size=H, num_layers=L, dropout=dropout)
        self.attention = Attention(attention, H, D, attention_size, where=f"{where}.attention") if attend else None
        self.combine = nn.Linear(D + H, H) if attend and placement == "output" else None  # W_c of Luong et al.
        self.gate = nn.Linear(H, 1) if context_gate else None
        self.bridge = nn.Linear(D, 2 * L * H) if bridge == "dense" else None
        self.drop = nn.Dropout(dropout)
        out_in = H + (D if self.context_in else 0)
        if tie_embeddings:
            self.out_proj = nn.Linear(out_in, E) if out_in != E else nn.Identity()
            self.out_bias = nn.Parameter(torch.zeros(V))
            self.out = None
        else:
            self.out = nn.Linear(out_in, V)

    # -- state --------------------------------------------------------------------------------
    def start(self, memory: torch.Tensor, lengths: Optional[torch.Tensor] = None,
              summary: Optional[torch.Tensor] = None) -> DecoderState:
        """The initial state of N inputs.

        :param memory: (N, S, D) the encoder's steps.
        :param lengths: (N,) real steps of each memory (None: all S); an empty one keeps one step.
        :param summary: (N, D) what the bridge maps to the initial state (the encoder's final
            state); None: the mean of the real memory steps.
        """
        N, S, D = memory.shape
        mask = None
        if lengths is not None:
            mask = length_mask(lengths.to(memory.device).clamp(min=1), S)  # (N, S)
        if self.bridge is not None:
            if summary is None:
                if mask is None:
                    summary = memory.mean(1)  # (N, D)
                else:
                    m = mask.unsqueeze(-1).to(memory.dtype)  # (N, S, 1)
                    summary = (memory * m).sum(1) / m.sum(1).clamp(min=1)
            L, H = self.num_layers, self.hidden_size
            hc = torch.tanh(self.bridge(summary)).view(N, 2, L, H)
            h, c = hc[:, 0], hc[:, 1]  # (N, L, H) each
        else:
            h = c = memory.new_zeros(N, self.num_layers, self.hidden_size)
        attend = self.attention is not None
        return DecoderState(
            h=h,
            c=c,
            feed=memory.new_zeros(N, self.hidden_size) if self.input_feeding else None,
            memory=memory if attend else None,
            keys=self.attention.keys(memory) if attend else None,
            mask=mask if attend else None,
        )

    # -- one step -----------------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output layer: (..., H or H + D) -> (..., V)."""
        if self.out is not None:
            return self.out(x)
        return F.linear(self.out_proj(x), self.embedding.weight, self.out_bias)

    def _lstm(self, x: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the LSTM over x (N, T, ·) from ``state``: outputs (N, T, H), final h and C (N, L, H)."""
        h0, c0 = state.h.transpose(0, 1).contiguous(), state.c.transpose(0, 1).contiguous()  # (L, N, H)
        out, (h, c) = self.lstm(x, None, (h0, c0))
        return out, h.transpose(0, 1), c.transpose(0, 1)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, Optional[torch.Tensor]]:
        """One step for N rows: previous tokens (N,) -> logits (N, V), new state, attention (N, S)."""
        feature, state, weights = self._advance(self.drop(self.embedding(tokens)), state)
        return self.logits(feature), state, weights

    def _advance(self, x: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, Optional[torch.Tensor]]:
        """One step from the embedded previous tokens x (N, E): the output layer's input (N, H or
        H + D), the new state and the attention (N, S)."""
        weights = context = None
        if self.context_in:
            query = state.h[:, -1]  # (N, H) the previous top state
            context, weights = self.attention(query, state.keys, state.memory, state.mask)  # (N, D), (N, S)
            if self.gate is not None:
                context = torch.sigmoid(self.gate(query)) * context
            x = torch.cat([x, context], -1)  # (N, E + D)
        if self.input_feeding:
            x = torch.cat([x, state.feed], -1)  # (N, E + H)
        out, h, c = self._lstm(x.unsqueeze(1), state)
        top = out[:, 0]  # (N, H)
        if self.combine is not None:
            context, weights = self.attention(top, state.keys, state.memory, state.mask)  # (N, D), (N, S)
            top = torch.tanh(self.combine(torch.cat([context, top], -1)))  # attentional state h̃ (N, H)
        elif self.context_in:
            top = torch.cat([top, context], -1)  # (N, H + D)
        feature = self.drop(top)
        new = state._replace(h=h, c=c, feed=feature if self.input_feeding else None)
        return feature, new, weights

    def search_step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, Optional[torch.Tensor]]:
        """:meth:`step` with log-probabilities: the step function greedy and beam search drive."""
        logits, state, weights = self.step(tokens, state)
        return torch.log_softmax(logits.float(), -1), state, weights

    # -- whole sequences ----------------------------------------------------------------------
    def teacher_forced(self, state: DecoderState, inputs: torch.Tensor, teacher_forcing: float = 1.0,
                       logits: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits (N, T, V) for every step, reading ``inputs`` (N, T): <bos> and the reference
        shifted by one. Returns the attention (N, T, S) too (None without attention).

        :param teacher_forcing: In training, the probability of reading the reference token
            rather than the decoder's own previous prediction (scheduled sampling, Bengio et al.
            2015); 1.0 is plain teacher forcing.
        :param logits: False returns the output layer's inputs (N, T, F) instead, for a loss that
            applies :meth:`logits` to the real (non-padding) steps only: with a large vocabulary the
            output layer is most of a step's cost.
        """
        N, T = inputs.shape
        scheduled = self.training and teacher_forcing < 1.0
        finish = self.logits if logits else (lambda x: x)
        if self.placement == "output" and not self.input_feeding and not scheduled:
            # every input is known and no step reads the one before: the LSTM runs the whole sequence
            out, _, _ = self._lstm(self.drop(self.embedding(inputs)), state)  # (N, T, H)
            weights = None
            if self.attention is not None:
                context, weights = self.attention(out, state.keys, state.memory, state.mask)  # (N, T, D), (N, T, S)
                out = torch.tanh(self.combine(torch.cat([context, out], -1)))
            return finish(self.drop(out)), weights  # (N, T, V)
        features, weights = [], []
        if not scheduled:
            # every input is known: embed them at once, then the output layer runs once on all steps
            embedded = self.drop(self.embedding(inputs))  # (N, T, E)
            for t in range(T):
                feature, state, w = self._advance(embedded[:, t], state)
                features.append(feature)
                if w is not None:
                    weights.append(w)
            return finish(torch.stack(features, 1)), (torch.stack(weights, 1) if weights else None)
        tokens = inputs[:, 0]
        for t in range(T):
            feature, state, w = self._advance(self.drop(self.embedding(tokens)), state)
            features.append(feature)
            if w is not None:
                weights.append(w)
            if t + 1 < T:  # sometimes read the decoder's own guess
                own = self.logits(feature.detach()).argmax(-1)
                gold = torch.rand(N, device=tokens.device) < teacher_forcing
                tokens = torch.where(gold, inputs[:, t + 1], own)
        return finish(torch.stack(features, 1)), (torch.stack(weights, 1) if weights else None)

    def generate(self, state: DecoderState, bos_id: int, eos_id: int, max_len: int | torch.Tensor,
                 beam_size: int = 1, length_penalty: float = 1.0, pad_id: Optional[int] = None,
                 **constraints) -> Hypotheses:
        """Decode every row of ``state``: greedy search (``beam_size`` 1) or beam search.

        :param max_len: Most output tokens: an int, or (N,) one per row.
        :param length_penalty: Beam search ranks ended hypotheses by log-prob / length ** this.
        :param pad_id: Token written after a hypothesis ends (default: ``eos_id``).
        :param constraints: ``min_length``, ``block_ngram_repeat`` (both searches) and
            ``length_penalty_kind`` (beam search; see ``seqkit.seq2seq.search``).
        """
        N = state.h.shape[0]
        if beam_size == 1:
            constraints.pop("length_penalty_kind", None)  # one hypothesis: nothing to rank
            return greedy_search(self.search_step, state, N, bos_id, eos_id, max_len, pad_id=pad_id, **constraints)
        return beam_search(self.search_step, state, N, beam_size, bos_id, eos_id, max_len, length_penalty,
                           pad_id=pad_id, **constraints)
