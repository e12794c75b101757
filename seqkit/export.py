"""``seqkit export``: a checkpoint's encoder + LSTM stack + head as an ONNX graph with dynamic batch
and length axes, and a ``metadata.json`` with everything a consumer needs besides the graph
(vocabularies, tokenizer JSON, label names, scalers, input and output names, the opset).

Why not ``torch.onnx.export`` of the model as it is: ``torch.nn.LSTM`` has no ONNX translation in
the dynamo exporter for ragged batches (the fused kernel, packed sequences; pytorch/pytorch
#126339), and seqkit's own recurrence runs in an ``autograd.Function`` with TorchScript loops,
which no exporter reads. So the graph recomputes the stack from its weights with the step written
out gate by gate (:func:`seqkit.xray.cell_step`, the same code the X-ray traces with) inside
``torch._higher_order_ops.scan``, which the dynamo exporter (``torch.onnx.export(dynamo=True)``,
needs ``onnxscript``) turns into an ONNX ``Scan`` over a dynamic number of steps. One code path
covers torch.nn.LSTM's weights, every gate variant of Greff et al. (2016), peepholes, layer norm
(Ba et al. 2016), projections (LSTMP) and the simple RNN. The legacy TorchScript exporter
(``dynamo=False``) would unroll a Python loop to the example's length, so it is not used.

Graph inputs: ``inputs`` (B, T) int64 token ids or (B, T, F) float32 features, and ``lengths``
(B,) int64; B and T are dynamic. Outputs: ``logits`` (classes) or ``predictions`` (regression),
(B, K) for a many-to-one head or (B, T, K) for a per-step head (zeros past each length's end go
through the head like PyTorch's padding does: ignore them). A generating head (one on
``seqkit.seq2seq.AttentionDecoder``) is exported as ``encoder.onnx`` (source -> the decoder's
initial state) and ``decoder_step.onnx`` (one step of the decoder-step protocol), and
:func:`greedy_decode` decodes over the two onnxruntime sessions with numpy alone.

Needs the optional dependencies: ``pip install 'seqkit[export]'`` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from functools import partial
from typing import Any, Optional

import torch
from torch import Tensor, nn

from seqkit.checkpoint import load_model
from seqkit.errors import SeqkitError
from seqkit.lstm import LSTMStack, final_hidden
from seqkit.spec import Encoded, Spec
from seqkit.xray import cell_step, gather_time, project, reverse_index, stack_cells

FORMATS = ("onnx",)
_MISSING = ("seqkit export needs the optional export dependencies (onnx, onnxscript, onnxruntime): "
            "pip install 'seqkit[export]'")


class ExportError(SeqkitError):
    """A model or a part of one that cannot be exported, with the reason in one line."""


def require_export_deps(runtime: bool = False) -> None:
    """Raise a one-line :class:`ExportError` when onnx / onnxscript (and onnxruntime) are missing."""
    import importlib.util

    names = ["onnx", "onnxscript"] + (["onnxruntime"] if runtime else [])
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        raise ExportError(f"{_MISSING} (missing: {', '.join(missing)})")


# ---------------------------------------------------------------------------------------------
# The graph: the stack's recurrence as a scan, the encoder and the head around it
# ---------------------------------------------------------------------------------------------


class ScanStack(nn.Module):
    """The forward pass of an :class:`~seqkit.LSTMStack` (either backend) or a
    :class:`~seqkit.SimpleRNNStack` in eval mode, as a scan over time that exports to ONNX with
    dynamic batch and length. Same outputs as the stack: (B, T, D) zeros on padding, and the final
    (h, C) with each sequence's own last step (the backward direction's first)."""

    def __init__(self, stack: nn.Module) -> None:
        super().__init__()
        stack_cells(stack)  # fails early, naming the class, for a stack it cannot read
        self.stack = stack  # a submodule: its parameters become the graph's initializers
        self.num_layers, self.num_directions = stack.num_layers, stack.num_directions

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        from torch._higher_order_ops.scan import scan

        B, T, _ = x.shape  # batch, time, input features
        cells = stack_cells(self.stack)  # recomputed per call: nn.LSTM's bias is a sum of two
        L, D = self.num_layers, self.num_directions
        steps = torch.arange(T, device=x.device)
        live = (steps.unsqueeze(0) < lengths.unsqueeze(1)).transpose(0, 1).unsqueeze(-1)  # (T, B, 1)
        rev = reverse_index(lengths, T) if D == 2 else None  # (B, T)
        hs, cs = [], []
        inp = x
        for layer in range(L):
            outs = []
            for d in range(D):
                w = cells[layer * D + d]
                H, P = w.hidden_size, w.out_size
                xp = project(w, inp if d == 0 else gather_time(inp, rev)).transpose(0, 1)  # (T, B, G*H)
                carry = [x.new_zeros(B, P), x.new_zeros(B, H)]
                fgr = w.w_gg is not None
                if fgr:
                    carry.append(x.new_zeros(B, w.spec.num_sigmoid * H))

                def body(state, xs, w=w, fgr=fgr):
                    a_x, m = xs  # (B, G*H), (B, 1)
                    h, c = state[0], state[1]
                    h_new, c_new, prev, _ = cell_step(w, a_x, h, c, state[2] if fgr else None)
                    nxt = [torch.where(m, h_new, h), torch.where(m, c_new, c)]
                    if fgr:
                        nxt.append(torch.where(m, prev, state[2]))
                    return nxt, torch.where(m, h_new, torch.zeros_like(h_new))

                final, y = scan(body, carry, (xp, live))  # y: (T, B, P)
                y = y.transpose(0, 1)  # (B, T, P)
                outs.append(y if d == 0 else gather_time(y, rev))
                hs.append(final[0])
                cs.append(final[1])
            inp = outs[0] if D == 1 else torch.cat(outs, -1)  # (B, T, D*P)
        return inp, (torch.stack(hs), torch.stack(cs))


def head_shape(head: nn.Module) -> str:
    """"sequence" for a head whose forward reads an Encoded (one output per sequence), "steps" for
    one whose forward reads the (B, T, D) outputs; anything else cannot be exported."""
    from seqkit.heads import ManyToOneHead, PerStepHead

    if isinstance(head, ManyToOneHead):
        return "sequence"
    if isinstance(head, PerStepHead):
        return "steps"
    import inspect

    try:
        params = [p for p in inspect.signature(head.forward).parameters if p != "self"]
    except (TypeError, ValueError):
        params = []
    if params[:1] == ["encoded"]:
        return "sequence"
    if params[:1] == ["outputs"]:
        return "steps"
    raise ExportError(
        f"model.head: {type(head).__name__} has no exportable forward; seqkit export takes heads whose forward reads "
        "the Encoded (ManyToOneHead and its subclasses) or the (B, T, D) outputs (PerStepHead, LongLagStepHead); "
        "generating heads export their decoder step instead"
    )


class ExportGraph(nn.Module):
    """Encoder -> stack (as :class:`ScanStack`) -> head of a :class:`~seqkit.SequenceModel`:
    ``forward(inputs, lengths)`` returns what the head's forward returns."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if getattr(model, "rnn", None) is None:
            raise ExportError("model.rnn is null: seqkit export needs a recurrent stack (LSTMStack or SimpleRNNStack)")
        self.encoder = model.encoder
        self.stack = ScanStack(model.rnn)
        self.head = model.head
        self.shape = head_shape(model.head)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        x = self.encoder(inputs, lengths)  # (B, T, I)
        out, state = self.stack(x, lengths)
        if self.shape == "steps":
            return self.head(out)  # (B, T, K)
        summary = final_hidden(state, self.stack.num_layers, self.stack.num_directions)  # (B, D)
        return self.head(Encoded(out, lengths, state, summary))  # (B, K)


def example_inputs(spec: Spec, batch: int = 3, steps: int = 5, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random inputs of the spec's kind with ragged lengths (the longest is ``steps``)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    lengths[0] = steps
    if spec.input_kind == "tokens":
        low = 1 if spec.input_size > 1 else 0  # stay off the pad id where possible
        inputs = torch.randint(low, max(spec.input_size, 1), (batch, steps), generator=g)
        inputs = inputs.masked_fill(torch.arange(steps).unsqueeze(0) >= lengths.unsqueeze(1), spec.pad_id)
    elif spec.input_kind == "features":
        inputs = torch.randn(batch, steps, spec.input_size, generator=g)
    else:
        raise ExportError(f"spec.input_kind {spec.input_kind!r}: seqkit export builds graphs for token and feature "
                          "inputs (frames and images need their encoder's example shape)")
    return inputs, lengths


def _describe_stack(stack: nn.Module) -> str:
    if isinstance(stack, LSTMStack):
        s = stack.cell_spec
        return (f"LSTMStack(implementation={stack.implementation}, variant={s.variant}, peepholes={s.has_peepholes}, "
                f"layer_norm={s.layer_norm}, proj_size={stack.proj_size}, layers={stack.num_layers}, "
                f"bidirectional={stack.bidirectional})")
    return type(stack).__name__


def _export(module: nn.Module, args: tuple, path: str, names_in: list[str], names_out: list[str], dims: dict,
            what: str, opset: Optional[int] = None) -> None:
    """``torch.onnx.export(dynamo=True)`` of ``module`` to ``path``; any exporter failure becomes
    one :class:`ExportError` line naming ``what`` and the exporter's own summary."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, None, dynamo=True, dynamic_shapes=dims, input_names=names_in,
                                        output_names=names_out, opset_version=opset, verbose=False)
    except Exception as exc:  # noqa: BLE001 - any exporter failure becomes one line naming the part
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the exporter colours its messages
        summary = re.search(r"<class '([\w.]+)'>: (.+)", text)  # its "Exception summary"
        first = (f"{summary.group(1).rsplit('.', 1)[-1]}: {summary.group(2).strip()}" if summary
                 else next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__))
        raise ExportError(f"{what} could not be exported to ONNX: {first[:300]}") from exc
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    program.save(path, external_data=False)


def export_onnx(model: nn.Module, path: str, opset: Optional[int] = None) -> dict[str, Any]:
    """Export ``model`` (a :class:`~seqkit.SequenceModel`) to the ONNX file ``path``.

    :returns: the graph's description: input and output names, dtypes and axes, the opset, the
        head's task shape and the stack, for ``metadata.json``.
    """
    if getattr(model, "ensemble", 1) > 1:
        raise ExportError(f"model.ensemble is {model.ensemble}: seqkit export writes one network and does not "
                          "average members yet; export a checkpoint trained with model.ensemble: 1")
    require_export_deps()
    model.eval()
    graph = ExportGraph(model).eval()
    spec = model.spec
    inputs, lengths = example_inputs(spec)
    classify = bool(getattr(model.head, "classify", spec.num_classes > 0))
    out_name = "logits" if classify else "predictions"
    batch, time = torch.export.Dim("batch", min=1), torch.export.Dim("time", min=1)
    dims = {"inputs": {0: batch, 1: time}, "lengths": {0: batch}}
    _export(graph, (inputs, lengths), path, ["inputs", "lengths"], [out_name], dims,
            f"{_describe_stack(model.rnn)} with {type(model.encoder).__name__} and {type(model.head).__name__}", opset)
    import onnx

    proto = onnx.load(path, load_external_data=False)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    with torch.no_grad():
        ref = graph(inputs, lengths)
    return {
        "file": os.path.basename(path),
        "opset": opset_used,
        "inputs": [
            {"name": "inputs", "dtype": "int64" if spec.input_kind == "tokens" else "float32",
             "shape": ["batch", "time"] if spec.input_kind == "tokens" else ["batch", "time", spec.input_size],
             "meaning": "token ids (pad with spec.pad_id past each length)" if spec.input_kind == "tokens"
             else "features per step"},
            {"name": "lengths", "dtype": "int64", "shape": ["batch"], "meaning": "real steps of each sequence"},
        ],
        "outputs": [{"name": out_name, "dtype": "float32",
                     "shape": ["batch", int(ref.shape[-1])] if graph.shape == "sequence" else ["batch", "time", int(ref.shape[-1])],
                     "meaning": ("class logits (softmax for probabilities)" if classify else "regression outputs")
                     + (" per step; steps past a sequence's length are padding" if graph.shape == "steps" else "")}],
        "task_shape": "many_to_one" if graph.shape == "sequence" else "per_step",
        "head": type(model.head).__name__,
        "stack": _describe_stack(model.rnn),
        "encoder": type(model.encoder).__name__,
    }


def check_parity(model: nn.Module, path: str, batches: tuple[int, ...] = (2, 7), steps: int = 9,
                 seed: int = 1) -> float:
    """The largest |onnxruntime − PyTorch| over random ragged batches of each size in
    ``batches``; PyTorch is the model's own ``encode`` + head (the real stack, not the scan)."""
    require_export_deps(runtime=True)
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for k, B in enumerate(batches):
        inputs, lengths = example_inputs(model.spec, B, steps, seed + k)
        ref = torch_outputs(model, inputs, lengths)
        (got,) = session.run(None, {"inputs": inputs.numpy(), "lengths": lengths.numpy()})
        worst = max(worst, float(abs(got - ref.numpy()).max()))
    return worst


def check_generator(model: nn.Module, out_dir: str, sentences: int = 20, steps: int = 9, seed: int = 1) -> int:
    """Greedy-decode random sources through the exported graphs (:func:`greedy_decode`) and
    through PyTorch (``decoder.generate``, beam 1); returns the number of sentences (all of them)
    when every one is equal token for token, else raises an :class:`ExportError`."""
    require_export_deps(runtime=True)
    import onnxruntime as ort

    head = model.head
    vocab = getattr(head, "vocab", None) or (model.spec.vocabs or {}).get("target")
    bos, eos, pad = vocab.bos_id, vocab.eos_id, vocab.pad_id
    inputs, lengths = example_inputs(model.spec, sentences, steps, seed)
    max_len = head.max_lengths(lengths) if hasattr(head, "max_lengths") else lengths + 5
    opts = ["CPUExecutionProvider"]
    enc = ort.InferenceSession(os.path.join(out_dir, "encoder.onnx"), providers=opts)
    step = ort.InferenceSession(os.path.join(out_dir, "decoder_step.onnx"), providers=opts)
    got, got_len = greedy_decode(enc, step, inputs.numpy(), lengths.numpy(), bos, eos, max_len.numpy(), pad)
    model.eval()
    with torch.no_grad():
        hyps = head.decoder.generate(head.start(model.encode(_batch(inputs, lengths))), bos, eos, max_len, 1, pad_id=pad)
    ref, ref_len = hyps.tokens.numpy(), hyps.lengths.numpy()
    same = ref.shape == got.shape and (ref == got).all() and (ref_len == got_len).all()
    if not same:
        raise ExportError("greedy decoding over onnxruntime differs from PyTorch's: the exported decoder step is wrong")
    return sentences


def torch_outputs(model: nn.Module, inputs: Tensor, lengths: Tensor) -> Tensor:
    """The head's forward over the model's own encoder and stack, in eval mode."""
    from seqkit.spec import Batch

    model.eval()
    with torch.no_grad():
        encoded = model.encode(Batch(inputs=inputs, lengths=lengths))
        return model.head(encoded.outputs if head_shape(model.head) == "steps" else encoded)


# ---------------------------------------------------------------------------------------------
# Generating heads: an encoder graph and a single decoder-step graph
# ---------------------------------------------------------------------------------------------


def is_generating(head: nn.Module) -> bool:
    """A head that decodes with :class:`seqkit.seq2seq.AttentionDecoder` (the decoder-step
    protocol): it has ``decoder`` and ``start(encoded) -> DecoderState``."""
    from seqkit.seq2seq import AttentionDecoder

    return isinstance(getattr(head, "decoder", None), AttentionDecoder) and callable(getattr(head, "start", None))


_STATE = ("h", "c", "feed", "memory", "keys", "mask")  # DecoderState's fields, in order


def _lstm_step(decoder: nn.Module, x: Tensor, state: Any) -> tuple[Tensor, Tensor, Tensor]:
    """``AttentionDecoder._lstm`` for one step (x (N, 1, ·)), from the decoder stack's weights
    (:func:`seqkit.xray.cell_step`): what the exported step graph runs instead of nn.LSTM."""
    inp, hs, cs = x[:, 0], [], []
    for layer, w in enumerate(stack_cells(decoder.lstm)):
        prev = x.new_zeros(x.shape[0], w.spec.num_sigmoid * w.hidden_size) if w.w_gg is not None else None
        h, c, _, _ = cell_step(w, project(w, inp), state.h[:, layer], state.c[:, layer], prev)
        hs.append(h)
        cs.append(c)
        inp = h
    return inp.unsqueeze(1), torch.stack(hs, 1), torch.stack(cs, 1)  # (N, 1, H), (N, L, H), (N, L, H)


class EncoderGraph(nn.Module):
    """Source -> the decoder's initial state: ``forward(inputs, lengths)`` returns the present
    fields of ``head.start(encoded)`` (h, c, feed, memory, keys, mask), batch first."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder, self.stack, self.head = model.encoder, ScanStack(model.rnn), model.head

    def forward(self, inputs: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        x = self.encoder(inputs, lengths)  # (N, S, I)
        out, state = self.stack(x, lengths)
        summary = final_hidden(state, self.stack.num_layers, self.stack.num_directions)
        start = self.head.start(Encoded(out, lengths, state, summary))
        # clone: an output may not alias another (dot attention's keys are the memory itself)
        return tuple(getattr(start, f).clone() for f in _STATE if getattr(start, f) is not None)


class DecoderStepGraph(nn.Module):
    """One decoder step: ``forward(tokens, h, c, [feed], [memory, keys, mask])`` returns the
    next-token log-probabilities (N, V), the new h, c (and feed), and the attention (N, S)."""

    def __init__(self, decoder: nn.Module, fields: tuple[str, ...]) -> None:
        super().__init__()
        self.decoder, self.fields = decoder, fields

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        from seqkit.seq2seq import DecoderState

        given = dict(zip(self.fields, state))
        st = DecoderState(*(given.get(f) for f in _STATE))
        log_probs, new, weights = self.decoder.search_step(tokens, st)
        outs = [log_probs, new.h, new.c] + ([new.feed] if new.feed is not None else [])
        return tuple(outs + ([weights] if weights is not None else []))


def export_generator(model: nn.Module, out_dir: str, opset: Optional[int] = None) -> dict[str, Any]:
    """Export a generating model as ``encoder.onnx`` (source -> initial decoder state) and
    ``decoder_step.onnx`` (one step of the decoder-step protocol); returns their description."""
    require_export_deps()
    model.eval()
    head = model.head
    if getattr(model, "rnn", None) is None:
        raise ExportError("model.rnn is null: the encoder graph needs a recurrent stack (image encoders without one "
                          "are not exported yet)")
    enc = EncoderGraph(model).eval()
    inputs, lengths = example_inputs(model.spec)
    with torch.no_grad():
        start = head.start(model.encode(_batch(inputs, lengths)))
    fields = tuple(f for f in _STATE if getattr(start, f) is not None)
    os.makedirs(out_dir, exist_ok=True)
    B, S = torch.export.Dim("batch", min=1), torch.export.Dim("source_time", min=1)
    _export(enc, (inputs, lengths), os.path.join(out_dir, "encoder.onnx"), ["inputs", "lengths"], list(fields),
            {"inputs": {0: B, 1: S}, "lengths": {0: B}}, f"the encoder of {type(head).__name__}", opset)
    step = DecoderStepGraph(head.decoder, fields).eval()
    decoder = head.decoder
    decoder._lstm = partial(_lstm_step, decoder)  # the step graph runs the cell from its weights
    try:
        N = torch.export.Dim("rows", min=1)
        dims = {"tokens": {0: N}, "state": tuple({0: N, 1: S} if f in ("memory", "keys", "mask") else {0: N}
                                                  for f in fields)}
        tokens = torch.ones(inputs.shape[0], dtype=torch.long)
        outs = ["log_probs", "h_out", "c_out"] + (["feed_out"] if "feed" in fields else [])
        outs += ["attention"] if decoder.attention is not None else []
        _export(step, (tokens, *(getattr(start, f) for f in fields)), os.path.join(out_dir, "decoder_step.onnx"),
                ["tokens", *fields], outs, dims, f"the decoder step of {type(head).__name__}", opset)
    finally:
        del decoder._lstm
    vocab = getattr(head, "vocab", None) or (model.spec.vocabs or {}).get("target")
    ids = {k: getattr(vocab, f"{k}_id", None) for k in ("bos", "eos", "pad")} if vocab is not None else {}
    import onnx

    proto = onnx.load(os.path.join(out_dir, "decoder_step.onnx"), load_external_data=False)
    return {
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "task_shape": "generate",
        "head": type(head).__name__,
        "stack": _describe_stack(model.rnn),
        "encoder": {"file": "encoder.onnx", "inputs": ["inputs", "lengths"], "outputs": list(fields)},
        "decoder_step": {"file": "decoder_step.onnx", "inputs": ["tokens", *fields], "outputs": outs,
                         "state_in_out": {f: f"{f}_out" for f in ("h", "c", "feed") if f in fields}},
        "tokens": ids,
        "max_length": {k: getattr(head, k) for k in ("max_length_ratio", "max_length_extra", "max_target_length")
                       if isinstance(getattr(head, k, None), (int, float))},
    }


def _batch(inputs: Tensor, lengths: Tensor):
    from seqkit.spec import Batch

    return Batch(inputs=inputs, lengths=lengths)


def greedy_decode(encoder: Any, step: Any, inputs, lengths, bos_id: int, eos_id: int, max_len,
                  pad_id: Optional[int] = None):
    """Greedy decoding over onnxruntime sessions (``encoder.onnx``, ``decoder_step.onnx``) with
    numpy only: the arithmetic of :func:`seqkit.greedy_search`, so it reproduces ``seqkit
    predict``'s greedy output token for token.

    :param max_len: most output tokens, an int or one per sentence (B,).
    :returns: ``tokens`` (B, L) (``pad_id``, by default ``eos_id``, after each end) and
        ``lengths`` (B,) counting the <eos>.
    """
    import numpy as np

    pad = eos_id if pad_id is None else pad_id
    inputs, lengths = np.asarray(inputs), np.asarray(lengths, dtype=np.int64)
    B = inputs.shape[0]
    names = [o.name for o in encoder.get_outputs()]
    state = dict(zip(names, encoder.run(None, {"inputs": inputs, "lengths": lengths})))
    step_in = [i.name for i in step.get_inputs()]
    step_out = [o.name for o in step.get_outputs()]
    limit = np.maximum(np.broadcast_to(np.asarray(max_len, dtype=np.int64), (B,)), 1)
    tokens = np.full(B, bos_id, dtype=np.int64)
    done = np.zeros(B, dtype=bool)
    out_len = np.zeros(B, dtype=np.int64)
    out = []
    for t in range(int(limit.max())):
        feeds = {"tokens": tokens, **{k: state[k] for k in step_in if k != "tokens"}}
        result = dict(zip(step_out, step.run(None, feeds)))
        for k in ("h", "c", "feed"):
            if f"{k}_out" in result:
                state[k] = result[f"{k}_out"]
        best = result["log_probs"].argmax(-1)
        live = ~done & (t < limit)
        tokens = np.where(live, best, pad).astype(np.int64)
        out_len += live
        done = done | ~live | (best == eos_id) | (t + 1 >= limit)
        out.append(tokens)
        if done.all():
            break
    return np.stack(out, 1), out_len


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        return value.tolist()
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    if hasattr(value, "state_dict") and callable(value.state_dict) and not isinstance(value, nn.Module):
        return _jsonable(value.state_dict())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)


def metadata(model: nn.Module, graph_info: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """What a consumer needs besides the graph: vocabularies (itos lists), tokenizers (their JSON
    also written as ``tokenizer_<role>.json``), label names, the spec's task fields (scalers,
    horizons...) and the graph's inputs and outputs."""
    spec = model.spec
    vocabs, tokenizers = {}, {}
    for role, vocab in (spec.vocabs or {}).items():
        vocabs[role] = _jsonable(vocab)
    base = {f.name for f in dataclasses.fields(Spec)}
    task = {}
    for f in dataclasses.fields(spec):
        if f.name in base:
            continue
        value = getattr(spec, f.name)
        if type(value).__name__ == "Tokenizer" and hasattr(value, "state_dict"):
            state = _jsonable(value)
            role = f.name[: -len("_tokenizer")] if f.name.endswith("_tokenizer") else f.name
            tokenizers[role] = state
            with open(os.path.join(out_dir, f"tokenizer_{role}.json"), "w", encoding="utf-8") as fh:
                json.dump(state, fh, indent=1)
        else:
            task[f.name] = _jsonable(value)
    from seqkit import __version__

    return {
        "format": "onnx",
        "seqkit_version": __version__,
        "graph": graph_info,
        "spec": {"type": type(spec).__name__, "source": spec.source, "input_kind": spec.input_kind,
                 "input_size": spec.input_size, "pad_id": spec.pad_id, "num_classes": spec.num_classes,
                 "num_targets": spec.num_targets},
        "labels": spec.label_names() if spec.num_classes else [],
        "vocabs": vocabs,
        "tokenizers": tokenizers,
        "task": task,
    }


# ---------------------------------------------------------------------------------------------
# seqkit export
# ---------------------------------------------------------------------------------------------


def export_checkpoint(ckpt_path: str, out_dir: str, fmt: str = "onnx", opset: Optional[int] = None,
                      verify: bool = True) -> dict[str, Any]:
    """Export a checkpoint into ``out_dir``: ``model.onnx`` and ``metadata.json``; returns the
    metadata (with the measured parity when onnxruntime is installed and ``verify``)."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: supported formats: {', '.join(FORMATS)}")
    require_export_deps()
    model, _ = load_model(ckpt_path)
    os.makedirs(out_dir, exist_ok=True)
    if is_generating(model.head):
        info = export_generator(model, out_dir, opset)
    else:
        info = export_onnx(model, os.path.join(out_dir, "model.onnx"), opset)
    meta = metadata(model, info, out_dir)
    meta["checkpoint"] = os.path.abspath(ckpt_path)
    import importlib.util

    if verify and importlib.util.find_spec("onnxruntime") is not None and is_generating(model.head):
        meta["parity"] = {"greedy_equal_rows": check_generator(model, out_dir), "runtime": "onnxruntime"}
    elif verify and importlib.util.find_spec("onnxruntime") is not None:
        path = os.path.join(out_dir, "model.onnx")
        meta["parity"] = {"max_abs_diff": check_parity(model, path), "batches": [2, 7], "steps": 9,
                          "runtime": "onnxruntime (CPUExecutionProvider)"}
    with open(os.path.join(out_dir, "metadata.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return meta


def export_command(argv: list[str]) -> int:
    """``seqkit export --ckpt_path X.ckpt --format onnx [--out DIR] [--opset N] [--no-verify]``."""
    parser = argparse.ArgumentParser(
        prog="seqkit export",
        description="Export a checkpoint's encoder + LSTM stack + head to ONNX with dynamic batch and length axes, "
                    "plus metadata.json (vocabularies, tokenizers, labels, scalers, input/output names, opset).",
    )
    parser.add_argument("--ckpt_path", required=True, help="checkpoint written by seqkit fit")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="output format (default onnx)")
    parser.add_argument("--out", default=None, help="output folder (default: export/ next to the checkpoint)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the onnxruntime parity check on random ragged batches")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.ckpt_path)), "export")
    try:
        meta = export_checkpoint(args.ckpt_path, out, args.format, args.opset, args.verify)
    except SeqkitError as exc:
        sys.stderr.write(f"seqkit export: error: {exc}\n")
        return 1
    g = meta["graph"]
    if g["task_shape"] == "generate":
        print(f"wrote {os.path.join(out, 'encoder.onnx')}, {os.path.join(out, 'decoder_step.onnx')} ({g['stack']}) "
              f"and {os.path.join(out, 'metadata.json')}")
        if "parity" in meta:
            print(f"greedy decoding over onnxruntime equals PyTorch's on {meta['parity']['greedy_equal_rows']} "
                  "random sources, token for token")
        return 0
    print(f"wrote {os.path.join(out, g['file'])} (opset {g['opset']}, {g['task_shape']}, {g['stack']}) and "
          f"{os.path.join(out, 'metadata.json')}")
    if "parity" in meta:
        print(f"onnxruntime vs PyTorch on ragged batches of 2 and 7: max |diff| = {meta['parity']['max_abs_diff']:.2e}")
    return 0


__all__ = ["DecoderStepGraph", "EncoderGraph", "ExportError", "ExportGraph", "ScanStack", "check_generator",
           "check_parity", "export_checkpoint", "export_command", "export_generator", "export_onnx", "greedy_decode",
           "load_model", "metadata"]

