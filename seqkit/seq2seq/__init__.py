"""seqkit.seq2seq: the kit every generating head shares - attention, an LSTM attention decoder,
greedy and beam search, and attention pictures.

* :mod:`~seqkit.seq2seq.attention`: dot and general scores (Luong, Pham & Manning 2015) and the
  additive score (Bahdanau, Cho & Bengio 2015), computed once per input on the memory side.
* :mod:`~seqkit.seq2seq.decoder`: :class:`AttentionDecoder`, attending after the LSTM step with
  input feeding (Luong et al. 2015) or before it with a gated context (Xu et al. 2015, "Show,
  Attend and Tell"); its ``step`` / ``search_step`` is the decoder-step protocol.
* :mod:`~seqkit.seq2seq.search`: batched greedy and beam search over any step function.
* :mod:`~seqkit.seq2seq.plots`: the :class:`AttentionPlot` callback and the figures it draws.

The translation plugin (source words -> target words) and the captioning plugin (image regions
or a vector -> words) both build their heads from these; plugins import them from here.
"""

from seqkit.seq2seq.attention import Attention, AttentionKind
from seqkit.seq2seq.decoder import AttentionDecoder, DecoderState, Placement
from seqkit.seq2seq.plots import AttentionLog, AttentionMap, AttentionPlot, plot_attention, plot_image_attention
from seqkit.seq2seq.search import Hypotheses, StepFn, beam_search, greedy_search, map_state

__all__ = [
    "Attention",
    "AttentionDecoder",
    "AttentionKind",
    "AttentionLog",
    "AttentionMap",
    "AttentionPlot",
    "DecoderState",
    "Hypotheses",
    "Placement",
    "StepFn",
    "beam_search",
    "greedy_search",
    "map_state",
    "plot_attention",
    "plot_image_attention",
]
