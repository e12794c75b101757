"""The one-to-many head: an LSTM decoder that writes a sequence from one input (an image, a vector).

Two ways to condition the decoder on the encoder's S region features (B, S, D), chosen with
``mode``:

- ``show_tell`` - Show and Tell (Vinyals et al. 2015, "Show and Tell: A Neural Image Caption
  Generator"): the input is seen once, at the start; here its mean feature initialises the
  decoder's (h, c) through a learned projection (the initialisation of Xu et al. 2015).
- ``show_attend_tell`` - Show, Attend and Tell (Xu et al. 2015, "Show, Attend and Tell: Neural
  Image Caption Generation with Visual Attention"): the same start, and at every step soft
  attention over the S regions (an MLP score as in Bahdanau et al. 2015) gives a context vector,
  scaled by a learned gate beta = sigmoid(w . h) (Xu et al. sec. 4.2.1), that is fed to the LSTM
  with the previous word and to the output layer. ``attention_reg`` adds their "doubly stochastic"
  penalty sum_i (1 - sum_t alpha_ti)^2, which pushes the decoder to look at every region.

The decoder is a stack of ``nn.LSTMCell`` (Hochreiter & Schmidhuber 1997, forget-gate bias 1 as
Gers et al. 2000 recommend): attention and search need one call per word anyway.

Training uses teacher forcing: the decoder reads the reference caption shifted by one
(``teacher_forcing`` < 1 feeds its own previous prediction instead with that probability -
scheduled sampling, Bengio et al. 2015). Decoding - greedy and beam search - is seqkit's shared
``seqkit.decoding``, the same code the translation decoder uses.

Metrics: BLEU-1 to BLEU-4 (Papineni et al. 2002; torchmetrics) of the decoded output against all
of an input's references, and exact match (the output equals one of the references). Validation
decodes greedily (fast); test and predict use ``beam_size``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.text import BLEUScore

from seqkit import Batch, Head, SeqkitError, Spec, beam_search, greedy_search, length_mask


class ExactMatch(Metric):
    """Share of outputs equal to one of their references (after tokenisation)."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        self.correct += sum(1.0 for p, refs in zip(preds, target) if p in refs)
        self.total += len(preds)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1.0)


class SpatialAttention(nn.Module):
    """Additive soft attention over S regions: alpha = softmax(v . tanh(W_f f_i + W_h h))."""

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.feat = nn.Linear(feature_size, attention_size)
        self.hid = nn.Linear(hidden_size, attention_size, bias=False)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def keys(self, feats: torch.Tensor) -> torch.Tensor:
        return self.feat(feats)  # (N, S, A): computed once per input, reused every step

    def forward(self, keys, feats, h, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.score(torch.tanh(keys + self.hid(h).unsqueeze(1))).squeeze(-1)  # (N, S)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        alpha = e.softmax(-1)  # (N, S)
        return torch.bmm(alpha.unsqueeze(1), feats).squeeze(1), alpha  # (N, D), (N, S)


class OneToManyHead(Head):
    """LSTM decoder generating a token sequence from the encoder's region features (one-to-many)."""

    prediction_format = "csv"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        mode: Literal["show_tell", "show_attend_tell"] = "show_attend_tell",
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        attention_size: int = 128,
        dropout: float = 0.0,
        teacher_forcing: float = 1.0,
        attention_reg: float = 0.0,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        max_len: Optional[int] = None,
        attention_plots: Optional[str] = None,
        max_plots: int = 16,
    ) -> None:
        """
        Args:
            spec: Sizes and the target vocabulary from the data module (linked automatically).
            input_size: Size D of each region feature (set by the model from the encoder).
            mode: "show_tell": the input only initialises the decoder state (Vinyals et al.
                2015); "show_attend_tell": also soft attention over the regions at every step
                (Xu et al. 2015).
            embedding_dim: Size of the word embeddings.
            hidden_size: Size of the decoder LSTM's state.
            num_layers: Stacked decoder LSTM layers.
            attention_size: Size of the attention MLP (show_attend_tell only).
            dropout: Dropout on the word embeddings and before the output layer (and between
                LSTM layers).
            teacher_forcing: Probability of feeding the reference word (not the model's own
                previous prediction) at each training step; 1.0 is plain teacher forcing.
            attention_reg: Weight of the doubly stochastic attention penalty (Xu et al. 2015,
                eq. 14); 0 turns it off.
            beam_size: Beam width for test and predict (1 = greedy); validation is greedy.
            length_penalty: Beam search ranks finished outputs by log-prob / length**this.
            max_len: Most tokens to generate (default: the longest training target + <eos>).
            attention_plots: Folder for PNGs of the attention over the image for each word
                during predict (show_attend_tell with an image encoder); null writes none.
            max_plots: Write attention PNGs for the first this many inputs.
        """
        super().__init__(spec, input_size)
        vocab = spec.vocabs.get("target")
        if vocab is None:
            raise SeqkitError("OneToManyHead needs a target vocabulary (spec.vocabs['target']); use it with CaptionData or VectorSequenceData")
        if mode not in ("show_tell", "show_attend_tell"):
            raise SeqkitError(f"model.head.init_args.mode: unknown mode {mode!r}; choose show_tell or show_attend_tell")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise SeqkitError(f"model.head.init_args.teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if beam_size < 1:
            raise SeqkitError(f"model.head.init_args.beam_size must be >= 1, got {beam_size}")
        self.vocab = vocab
        self.attend = mode == "show_attend_tell"
        self.mode, self.num_layers, self.hidden_size = mode, num_layers, hidden_size
        self.teacher_forcing, self.attention_reg = teacher_forcing, attention_reg
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_len = max_len or int(spec.extra.get("max_target_len", 30))
        self.attention_plots, self.max_plots = attention_plots, max_plots
        V, D, L, H = len(vocab), input_size, num_layers, hidden_size  # vocab, feature, layers, hidden
        self.embed = nn.Embedding(V, embedding_dim, padding_idx=vocab.pad_id)
        self.init_h = nn.Linear(D, L * H)
        self.init_c = nn.Linear(D, L * H)
        # step-wise decoding (attention, search) calls the LSTM once per word: LSTMCells, with the
        # forget-gate bias at 1 (Gers et al. 2000, as seqkit's LSTMStack) so it starts by remembering
        sizes = [embedding_dim + (D if self.attend else 0)] + [H] * (L - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(n, H) for n in sizes)
        with torch.no_grad():
            for cell in self.cells:  # gate rows are (i, f, g, o)
                cell.bias_ih[H : 2 * H].fill_(1.0)
                cell.bias_hh[H : 2 * H].zero_()
        if self.attend:
            self.attention = SpatialAttention(D, H, attention_size)
            self.gate = nn.Linear(H, 1)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(H + (D if self.attend else 0), V)
        self.set_metrics(MetricCollection(
            {f"bleu{n}": BLEUScore(n_gram=n) for n in range(1, 5)} | {"exact": ExactMatch()}, compute_groups=False
        ))
        del self.train_metrics  # training is teacher-forced: nothing decoded to score
        self._warned_plots = False

    # -- decoder ------------------------------------------------------------------------------
    def init_state(self, encoded) -> dict:
        """Decoder state from the encoder output: (h, c) from the mean region, plus what attention
        reuses every step. Tensors are (N, ...) so beam search can repeat and reorder them."""
        feats = encoded.outputs  # (B, S, D)
        B, S, D = feats.shape
        mask = None
        if encoded.lengths is not None and feats.shape[1] > 1:
            mask = length_mask(encoded.lengths.to(feats.device), S)  # (B, S)
            mean = (feats * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        else:
            mean = feats.mean(1)  # (B, D)
        L, H = self.num_layers, self.hidden_size
        state = {
            "h": torch.tanh(self.init_h(mean)).view(B, L, H),
            "c": torch.tanh(self.init_c(mean)).view(B, L, H),
        }
        if self.attend:
            state.update(feats=feats, keys=self.attention.keys(feats), mask=mask)
        return state

    def decode_step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict, Optional[torch.Tensor]]:
        """One decoder step: (N,) previous tokens -> ((N, V) logits, new state, (N, S) attention)."""
        x = self.dropout(self.embed(tokens))  # (N, E)
        h, c = state["h"], state["c"]  # (N, L, H)
        alpha = ctx = None
        if self.attend:
            top = h[:, -1]  # (N, H)
            ctx, alpha = self.attention(state["keys"], state["feats"], top, state["mask"])  # (N, D), (N, S)
            ctx = torch.sigmoid(self.gate(top)) * ctx
            x = torch.cat([x, ctx], -1)  # (N, E + D)
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            h_l, c_l = cell(x, (h[:, layer], c[:, layer]))  # (N, H) each
            hs.append(h_l)
            cs.append(c_l)
            x = self.dropout(h_l)  # the next layer's input (dropout between layers)
        o = hs[-1]  # (N, H)
        logits = self.out(self.dropout(torch.cat([o, ctx], -1) if self.attend else o))  # (N, V)
        return logits, {**state, "h": torch.stack(hs, 1), "c": torch.stack(cs, 1)}, alpha

    def search_step(self, tokens, state):
        """The step seqkit.decoding expects: log-probabilities instead of logits."""
        logits, state, alpha = self.decode_step(tokens, state)
        return logits.log_softmax(-1), state, alpha

    def teacher_forced(self, state: dict, targets: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits (C, T, V) for every target position, reading the reference shifted by one."""
        inputs = targets[:, :-1]  # (C, T): <bos> w1 ... w_n
        C, T = inputs.shape
        sampling = self.training and self.teacher_forcing < 1.0
        logits, alphas = [], []
        tok = inputs[:, 0]
        for t in range(T):
            if t > 0:
                tok = inputs[:, t]
                if sampling:  # scheduled sampling: sometimes feed the model's own previous word
                    own = logits[-1].argmax(-1)
                    tok = torch.where(torch.rand(C, device=tok.device) < self.teacher_forcing, tok, own)
            out, state, alpha = self.decode_step(tok, state)
            logits.append(out)
            if alpha is not None:
                alphas.append(alpha)
        return torch.stack(logits, 1), (torch.stack(alphas, 1) if alphas else None)  # (C, T, V), (C, T, S)

    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        encoded = model.encode(batch)
        state = self.init_state(encoded)
        image_of = batch.extra.get("caption_image")  # (C,): the input each caption belongs to
        if image_of is not None:  # several captions per input: encoded once, decoded per caption
            image_of = image_of.to(batch.targets.device)
            tf_state = {k: None if v is None else v.index_select(0, image_of) for k, v in state.items()}
        else:
            image_of = torch.arange(batch.targets.shape[0], device=batch.targets.device)
            tf_state = state
        logits, alphas = self.teacher_forced(tf_state, batch.targets)
        gold = batch.targets[:, 1:]  # (C, T)
        C, T = gold.shape
        n = (batch.target_lengths.to(gold.device) - 1).clamp(min=1)  # (C,) real target steps
        mask = length_mask(n, T).to(logits.dtype)  # (C, T)
        nll = F.cross_entropy(logits.transpose(1, 2), gold, reduction="none") * mask  # (C, T)
        per_caption = nll.sum(1) / n.to(nll.dtype)  # (C,) mean per word
        if alphas is not None and self.attention_reg > 0:
            cover = (alphas * mask.unsqueeze(-1)).sum(1)  # (C, S)
            per_caption = per_caption + self.attention_reg * ((1.0 - cover) ** 2).sum(1)
        # mean over each input's captions, then over inputs: the same loss whichever way a batch
        # of inputs is split across DDP ranks
        B = state["h"].shape[0]
        counts = torch.zeros(B, device=gold.device, dtype=nll.dtype).index_add_(0, image_of, torch.ones_like(per_caption))
        loss = (per_caption / counts[image_of]).sum() / B
        metrics = self.metrics(stage)
        if metrics is not None:
            with torch.no_grad():
                hyps = self.search(state, 1 if stage == "val" else self.beam_size)
            metrics.update(self.texts(hyps.tokens), batch.extra["references"])
        return loss

    def search(self, state: dict, beam_size: int):
        """Decode a batch from its initial state: seqkit.decoding's greedy or beam search."""
        B = state["h"].shape[0]
        bos, eos = self.vocab.bos_id, self.vocab.eos_id
        if beam_size == 1:
            return greedy_search(self.search_step, state, B, bos, eos, self.max_len)
        return beam_search(self.search_step, state, B, beam_size, bos, eos, self.max_len, length_penalty=self.length_penalty)

    def texts(self, tokens: torch.Tensor) -> list[str]:
        """Decoded ids (B, L) as space-joined tokens, the form references are compared in."""
        return [" ".join(self.vocab.decode(row)) for row in tokens.tolist()]

    def predict(self, model, batch: Batch) -> list[dict]:
        state = self.init_state(model.encode(batch))
        hyps = self.search(state, self.beam_size)
        tokenizer = self.spec.extra.get("tokenizer")
        source = self.spec.extra.get("source_field", "input")
        target = self.spec.extra.get("target_field", "output")
        names = batch.extra.get("names") or [""] * batch.size
        records = []
        for b, i in enumerate(batch.index.tolist()):
            words = self.vocab.decode(hyps.tokens[b].tolist())
            text = tokenizer.detokenize(words) if tokenizer is not None else " ".join(words)
            records.append({"index": i, source: names[b], target: text, "log_prob": round(float(hyps.scores[b]), 4)})
        if self.attention_plots:
            self._plot(model, batch, hyps)
        return records

    def _plot(self, model, batch: Batch, hyps) -> None:
        grid = getattr(model.encoder, "grid", None)
        if hyps.attention is None or grid is None or self.spec.input_kind != "image":
            if not self._warned_plots:
                from lightning.pytorch.utilities import rank_zero_warn

                rank_zero_warn("seqkit: model.head.init_args.attention_plots needs mode show_attend_tell and an image encoder; no PNGs written")
                self._warned_plots = True
            return
        from seqkit_caption.plots import save_attention_png

        mean = torch.tensor(self.spec.extra.get("mean", (0.0, 0.0, 0.0))).view(3, 1, 1)
        std = torch.tensor(self.spec.extra.get("std", (1.0, 1.0, 1.0))).view(3, 1, 1)
        names = batch.extra.get("names") or [""] * batch.size
        for b, i in enumerate(batch.index.tolist()):
            if i >= self.max_plots:
                continue
            n = int(hyps.lengths[b])
            ids = hyps.tokens[b, :n].tolist()
            words = [self.vocab.itos[t] for t in ids]
            image = (batch.inputs[b].detach().float().cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()  # (H, W, 3)
            attn = hyps.attention[b, :n].detach().float().cpu().view(n, *grid).numpy()  # (n, H', W')
            stem = re.sub(r"[^\w.-]+", "_", os.path.splitext(os.path.basename(str(names[b])))[0]) or "input"
            save_attention_png(os.path.join(self.attention_plots, f"{i:05d}-{stem}.png"), image, words, attn, title=str(names[b]))
