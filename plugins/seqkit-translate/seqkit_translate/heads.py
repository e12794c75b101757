"""The encoder-decoder head for translation: an LSTM decoder with attention over the core
encoder's states.

* Sutskever, Vinyals & Le (2014): the decoder starts from the encoder's final state (through a
  learned bridge, so a bidirectional or differently sized encoder works) — ``attention: none``.
* Bahdanau, Cho & Bengio (2015) and Luong, Pham & Manning (2015): attention over every encoder
  state (additive / dot / general scores); Luong's input feeding passes the previous attentional
  state into the next step.
* Press & Wolf (2017): optionally tie the output layer to the target embedding.
* Bengio et al. (2015): with ``teacher_forcing`` < 1 the decoder is fed its own previous
  prediction instead of the reference token that share of the time.

The decoder, the attention and the search are seqkit's shared kit (``seqkit.seq2seq``; the
captioning head uses the same). The loss is the token cross-entropy summed over each sentence and
averaged over sentences (OpenNMT-py's default "sents" normalisation); it is exact under DDP, where
every process holds an equal share of each global batch. Validation, test and predict decode
greedily or with beam search (a length penalty ranks the ended hypotheses), batched over
sentences; BLEU and chrF are scored on detokenised text. Attention pictures are drawn by the
``seqkit.seq2seq.AttentionPlot`` callback from what this head records in ``attention_log``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import CHRFScore, Perplexity, SacreBLEUScore

from seqkit import EncodeFn, Encoded, Head, SeqkitError, length_mask, records_for
from seqkit.seq2seq import AttentionDecoder, AttentionKind, AttentionLog, AttentionMap, DecoderState, Hypotheses
from seqkit_translate.spec import TranslationBatch, TranslationSpec


class Seq2SeqHead(Head):
    """LSTM decoder with attention, input feeding, greedy/beam decoding, BLEU and chrF."""

    spec_type = TranslationSpec
    prediction_format = "txt"
    attention_log: Optional[AttentionLog] = None
    """Set by ``seqkit.seq2seq.AttentionPlot`` while testing or predicting: the head records the
    attention of the examples it asks for."""

    def __init__(
        self,
        spec: TranslationSpec,
        input_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: AttentionKind = "general",
        attention_size: Optional[int] = None,
        input_feeding: bool = True,
        bridge: Literal["dense", "zero"] = "dense",
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
        teacher_forcing: float = 1.0,
        label_smoothing: float = 0.0,
        normalization: Literal["sents", "tokens"] = "sents",
        beam_size: int = 5,
        val_beam_size: int = 1,
        length_penalty: float = 1.0,
        length_penalty_kind: Literal["avg", "wu"] = "avg",
        min_length: int = 0,
        block_ngram_repeat: int = 0,
        replace_unk: bool = False,
        max_length_ratio: float = 1.5,
        max_length_extra: int = 10,
        val_bleu_every: int = 1,
        val_bleu_sentences: Optional[int] = None,
    ) -> None:
        """
        Args:
            spec: Sizes, vocabularies and tokenizers from the data module (linked automatically).
            input_size: Size of the encoder's outputs (set by the model; doubled when bidirectional).
            embedding_dim: Size of the target-token embeddings.
            hidden_size: Size of the decoder LSTM's state.
            num_layers: Decoder LSTM layers.
            dropout: Dropout on embeddings, between decoder layers and before the output layer.
            attention: "none" (Sutskever et al. 2014), "dot" or "general" (Luong et al. 2015),
                "additive" (Bahdanau et al. 2015).
            attention_size: Hidden size of additive attention (default: hidden_size).
            input_feeding: Feed the previous attentional state into the next decoder step
                (Luong et al. 2015); ignored without attention.
            bridge: How the decoder starts: "dense" maps the encoder's final state (both
                directions) through a tanh layer to every decoder layer's (h, c); "zero" starts
                from zeros.
            tie_embeddings: Share the output layer's weights with the target embedding (Press &
                Wolf 2017); a projection is added when hidden_size != embedding_dim.
            share_embeddings: Share the target embedding with the encoder's source embedding
                (OpenNMT-py's share_embeddings); needs one joint vocabulary
                (data.init_args.joint_vocab: true) and equal embedding sizes. With
                tie_embeddings too, encoder, decoder and output layer share one matrix.
            teacher_forcing: Probability of feeding the reference token (else the model's own
                previous prediction) at each training step; 1.0 is plain teacher forcing.
            label_smoothing: Label smoothing of the training loss (Szegedy et al. 2016): the
                target distribution puts 1 - ε on the reference token and ε spread evenly over
                the whole vocabulary (torch's cross_entropy definition).
            normalization: The training loss is the token cross-entropy summed over the batch
                and divided by its number of sentences ("sents", OpenNMT-py's default; exact
                under DDP) or of target tokens ("tokens", every token weighs the same).
            beam_size: Beam size for test and predict; 1 is greedy search.
            val_beam_size: Beam size for validation BLEU (1, greedy, keeps validation cheap).
            length_penalty: The alpha of the length penalty that ranks ended hypotheses (0: raw
                log-probability, which favours short outputs).
            length_penalty_kind: "avg": log-prob / length ** alpha (alpha 1: the per-token
                mean); "wu": log-prob / ((5 + length) / 6) ** alpha (Wu et al. 2016, GNMT).
            min_length: The decoder may not end a sentence before this many tokens.
            block_ngram_repeat: Never repeat an n-gram of this many tokens within one output
                (OpenNMT-py's block_ngram_repeat; 0: off).
            replace_unk: Replace each <unk> the decoder writes with the source token it attends
                to most (Luong et al. 2015b); needs attention.
            max_length_ratio: Longest output = max_length_ratio * source length + max_length_extra
                tokens (and never more than the data's max_target_length).
            max_length_extra: See max_length_ratio.
            val_bleu_every: Decode (BLEU, chrF) on every Nth validation only; loss, accuracy and
                perplexity are computed on every one. The sanity check never decodes.
            val_bleu_sentences: Decode only the first N validation sentences (null: all).
        """
        super().__init__(spec, input_size)
        target = spec.vocabs.get("target")
        if target is None:
            raise SeqkitError(f"Seq2SeqHead needs a target vocabulary (spec.vocabs['target']); "
                              f"{spec.source or 'the data module'} gives none")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise SeqkitError(f"model.head.init_args.teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if beam_size < 1 or val_beam_size < 1:
            raise SeqkitError("model.head.init_args.beam_size and val_beam_size must be >= 1")
        for name, value in (("min_length", min_length), ("block_ngram_repeat", block_ngram_repeat)):
            if value < 0:
                raise SeqkitError(f"model.head.init_args.{name} must be >= 0, got {value}")
        if val_bleu_every < 1 or (val_bleu_sentences is not None and val_bleu_sentences < 1):
            raise SeqkitError(f"model.head.init_args.val_bleu_every must be >= 1 and val_bleu_sentences >= 1 or null "
                              f"(got {val_bleu_every} and {val_bleu_sentences})")
        if normalization not in ("sents", "tokens"):
            raise SeqkitError(f"model.head.init_args.normalization: unknown {normalization!r}; choose sents or tokens")
        if replace_unk and attention == "none":
            raise SeqkitError("model.head.init_args.replace_unk needs attention (attention: none has no alignment)")
        self.vocab = target
        self.tokenizer = spec.target_tokenizer
        self.max_target_length = int(spec.max_target_length)
        self.teacher_forcing, self.label_smoothing = teacher_forcing, label_smoothing
        self.normalization, self.share_embeddings, self.replace_unk = normalization, share_embeddings, replace_unk
        self.beam_size, self.val_beam_size, self.length_penalty = beam_size, val_beam_size, length_penalty
        self.constraints = {"length_penalty_kind": length_penalty_kind, "min_length": min_length,
                            "block_ngram_repeat": block_ngram_repeat}
        self.max_length_ratio, self.max_length_extra = max_length_ratio, max_length_extra
        self.val_bleu_every, self.val_bleu_sentences = val_bleu_every, val_bleu_sentences
        self._val_round = 0  # validations begun (the sanity check not counted)
        self.decoder = AttentionDecoder(
            len(target), input_size, embedding_dim, hidden_size, num_layers, dropout, attention=attention,
            attention_size=attention_size, placement="output", input_feeding=input_feeding, bridge=bridge,
            tie_embeddings=tie_embeddings, pad_id=target.pad_id,
        )

        V, pad = len(target), target.pad_id
        base = {"acc": MulticlassAccuracy(V, ignore_index=pad, average="micro"), "ppl": Perplexity(ignore_index=pad)}
        self.set_metrics(MetricCollection(base, compute_groups=False))
        for stage in ("val", "test"):  # decoding metrics only where the head decodes
            # chrF is character n-grams only (sacrebleu's CHRF()); chrF++ adds word bigrams
            metrics = {**{k: m.clone() for k, m in base.items()}, "bleu": SacreBLEUScore(tokenize="13a"),
                       "chrf": CHRFScore(n_word_order=0), "chrf++": CHRFScore(n_word_order=2)}
            setattr(self, f"{stage}_metrics", MetricCollection(metrics, prefix=f"{stage}_", compute_groups=False))
        # the validations that do not decode log these (the same metric objects, not registered twice)
        self.__dict__["_val_undecoded"] = MetricCollection(
            {k: self.val_metrics[k] for k in base}, prefix="val_", compute_groups=False)

    def bind(self, encoder: torch.nn.Module) -> None:
        """``share_embeddings``: the decoder reads its tokens through the encoder's embedding."""
        if not self.share_embeddings:
            return
        source = self.spec.vocabs.get("source")
        emb = getattr(encoder, "embedding", None)
        if source is None or source.itos != self.vocab.itos:
            raise SeqkitError("model.head.init_args.share_embeddings needs one vocabulary for source and target: "
                              "set data.init_args.joint_vocab: true")
        if not isinstance(emb, torch.nn.Embedding) or emb.weight.shape != self.decoder.embedding.weight.shape:
            have = tuple(emb.weight.shape) if isinstance(emb, torch.nn.Embedding) else type(encoder).__name__
            raise SeqkitError(f"model.head.init_args.share_embeddings needs a TokenEmbedding encoder of the decoder's "
                              f"shape {tuple(self.decoder.embedding.weight.shape)} (vocabulary, embedding_dim); got "
                              f"{have}: set model.encoder.init_args.embedding_dim to model.head.init_args.embedding_dim")
        self.decoder.embedding.weight = emb.weight

    def on_stage_start(self, stage: str) -> None:
        if stage == "val":
            self._val_round += 1

    def _decodes(self, stage: str) -> bool:
        """Whether this stage's batches are decoded (BLEU): always in test, every
        ``val_bleu_every``-th validation (never the sanity check)."""
        return stage == "test" or (stage == "val" and self._val_round > 0 and self._val_round % self.val_bleu_every == 0)

    def monitor(self) -> tuple[str, str]:
        # BLEU when every validation decodes; otherwise the loss, which every validation has
        return ("val_bleu", "max") if self.val_bleu_every == 1 else ("val_loss", "min")

    def metrics(self, stage: str):
        if stage == "val" and not self._decodes(stage):
            return self._val_undecoded
        return super().metrics(stage)

    # -- decoding ----------------------------------------------------------------------------
    def start(self, encoded: Encoded) -> DecoderState:
        """The decoder's state for a batch: attention over every encoder step, the bridge from
        the encoder's final state (the mean of the real steps when the model has no stack)."""
        summary = encoded.final if encoded.state is not None and encoded.final.shape[-1] == self.input_size else None
        return self.decoder.start(encoded.outputs, encoded.lengths, summary)

    def max_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) longest output per sentence: a ratio of its source length plus a margin."""
        limit = (lengths.float() * self.max_length_ratio).ceil().long() + self.max_length_extra
        return limit.clamp(min=1, max=self.max_target_length + 1)  # + 1: room for <eos>

    def generate(self, state: DecoderState, lengths: torch.Tensor, beam_size: int) -> Hypotheses:
        """Translate a batch: greedy (beam_size 1) or beam search, all sentences at once."""
        v = self.vocab
        max_len = self.max_lengths(lengths.to(state.h.device))
        return self.decoder.generate(state, v.bos_id, v.eos_id, max_len, beam_size, self.length_penalty,
                                     pad_id=v.pad_id, **self.constraints)

    def to_text(self, hyps: Hypotheses, source_tokens: Optional[list[list[str]]] = None) -> list[list[str]]:
        """Output tokens of each hypothesis (up to <eos>, specials dropped); with ``replace_unk``
        and the batch's ``source_tokens``, each <unk> becomes the source token attended most."""
        rows = hyps.tokens.tolist()
        unk = self.vocab.unk_id
        out = []
        for b, (row, n) in enumerate(zip(rows, hyps.lengths.tolist())):
            row = row[: int(n)]
            if self.replace_unk and source_tokens is not None and hyps.attention is not None and unk in row:
                src, skip = source_tokens[b], {self.vocab.pad_id, self.vocab.bos_id}
                toks = []
                for t, tok in enumerate(row):
                    if tok == self.vocab.eos_id:
                        break
                    if tok == unk and src:
                        toks.append(src[int(hyps.attention[b, t, : len(src)].argmax())])
                    elif tok not in skip:
                        toks.append(self.vocab.itos[tok])
                out.append(toks)
            else:
                out.append(self.vocab.decode(row))
        return out

    def detokenize(self, tokens: list[str]) -> str:
        return self.tokenizer.detokenize(tokens) if self.tokenizer is not None else " ".join(tokens)

    # -- the Head contract -------------------------------------------------------------------
    def loss(self, encoded: Encoded, batch: TranslationBatch, stage: str, encode: EncodeFn) -> torch.Tensor:
        state = self.start(encoded)
        targets = batch.targets  # (B, T), ends in <eos>
        B, T = targets.shape
        pad = self.vocab.pad_id
        real = length_mask(batch.target_lengths.to(targets.device), T)  # (B, T)
        targets = targets.masked_fill(~real, pad)  # whatever the padding holds, it never counts
        bos = torch.full((B, 1), self.vocab.bos_id, dtype=torch.long, device=targets.device)
        features, _ = self.decoder.teacher_forced(state, torch.cat([bos, targets[:, :-1]], 1), self.teacher_forcing,
                                                  logits=False)  # (B, T, F)
        # the output layer and the loss run on the real target steps only, never on padding
        gold = targets[real]  # (M,)
        logits = self.decoder.logits(features[real]).float()  # (M, V)
        token_loss = F.cross_entropy(logits, gold, label_smoothing=self.label_smoothing, reduction="sum")
        # summed over tokens, averaged over sentences ("sents") or over target tokens ("tokens")
        loss = token_loss / (B if self.normalization == "sents" else real.sum().clamp(min=1))
        metrics = self.metrics(stage)
        with torch.no_grad():
            metrics["acc"].update(logits.argmax(-1), gold)
            metrics["ppl"].update(logits.unsqueeze(0), gold.unsqueeze(0))
            if self._decodes(stage):
                self._score(state, batch, metrics, self.val_beam_size if stage == "val" else self.beam_size,
                            subset=self.val_bleu_sentences if stage == "val" else None)
        return loss

    def _score(self, state, batch: TranslationBatch, metrics, beam_size: int, subset: Optional[int]) -> None:
        """Decode the batch (its sentences with index < ``subset``) and update BLEU and chrF."""
        rows = list(range(batch.size))
        if subset is not None:
            rows = [r for r, i in enumerate(batch.index.tolist()) if i < subset]
            if not rows:
                return
            index = torch.tensor(rows, device=state.h.device)
            state, lengths = state.rows(index), batch.lengths[index.cpu()]
        else:
            lengths = batch.lengths
        hyps = self.generate(state, lengths, beam_size)
        sources = [batch.source_tokens[r] for r in rows]
        texts = [self.detokenize(toks) for toks in self.to_text(hyps, sources)]
        references = [[batch.references[r]] for r in rows]
        for name in ("bleu", "chrf", "chrf++"):
            metrics[name].update(texts, references)
        if subset is None:
            self._record_attention(batch, hyps)

    @torch.no_grad()
    def predict(self, encoded: Encoded, batch: TranslationBatch, encode: EncodeFn) -> list[dict[str, Any]]:
        hyps = self.generate(self.start(encoded), batch.lengths, self.beam_size)
        self._record_attention(batch, hyps)
        records = records_for(batch)
        texts = self.to_text(hyps, batch.source_tokens)
        for rec, toks, n, score in zip(records, texts, batch.lengths.tolist(), hyps.scores.tolist()):
            blank = n == 0  # a blank input line gives a blank output line
            rec.update(text="" if blank else self.detokenize(toks), log_prob=None if blank else round(score, 4))
        return records

    def _record_attention(self, batch: TranslationBatch, hyps: Hypotheses) -> None:
        """Hand the attention of the sentences the AttentionPlot callback asked for to its log."""
        log = self.attention_log
        if log is None or hyps.attention is None:
            return
        outputs = self.to_text(hyps)
        for row, index in enumerate(batch.index.tolist()):
            if log.wants(index):
                src = batch.source_tokens[row]
                out = outputs[row] + (["<eos>"] if len(outputs[row]) < int(hyps.lengths[row]) else [])
                log.add(AttentionMap(index, out, hyps.attention[row, : len(out), : len(src)].float().cpu(), source=src))
