"""``seqkit export`` (seqkit/export.py): ONNX graphs with dynamic batch and length axes whose
onnxruntime outputs equal PyTorch's within 1e-4 at two batch sizes with ragged lengths, for the
torch backend and seqkit's own recurrence (variants, peepholes, layer norm, projections), for
many-to-one and per-step heads on token and feature inputs; and the command on a checkpoint."""

from __future__ import annotations

import json
import os
from functools import partial

import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'seqkit[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed; torch.onnx.export(dynamo=True) needs it "
                    "(pip install 'seqkit[export]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'seqkit[export]')")

from seqkit.cells import VARIANTS  # noqa: E402
from seqkit.encoders import FeatureProjection, TokenEmbedding  # noqa: E402
from seqkit.export import ExportError, example_inputs, export_command, export_onnx, torch_outputs  # noqa: E402
from seqkit.heads import ManyToOneHead, PerStepHead  # noqa: E402
from seqkit.lstm import LSTMStack  # noqa: E402
from seqkit.model import SequenceModel  # noqa: E402
from seqkit.spec import Spec  # noqa: E402
from seqkit.srn import SimpleRNNStack  # noqa: E402

TOL = 1e-4
FEATURES = Spec(input_kind="features", input_size=3, num_targets=2, source="test")


def _marker_spec():
    from seqkit.marker import MarkerTaskData

    return MarkerTaskData(num_train=32, num_val=8, num_test=8, max_len=10).spec


# (data, head, stack). Each scan (layer x direction) costs seconds of torch.export tracing, so the
# default cases are few and together cover: both backends, every part of seqkit's recurrence
# (full gate recurrence, peepholes, layer norm, projection; the coupled gate in the checkpoint
# test), both directions, many-to-one (max; "last" in the checkpoint test) and per-step heads,
# token and feature inputs, and the decoder step of a generating head.
CASES = {
    "torch-features-perstep-bi-proj": ("features", PerStepHead,
                                       partial(LSTMStack, hidden_size=8, bidirectional=True, proj_size=4)),
    "seqkit-fgr-peepholes-layernorm-proj-max": (
        "marker", partial(ManyToOneHead, pooling="max"),
        partial(LSTMStack, hidden_size=8, variant="fgr", peepholes=True, layer_norm=True, proj_size=3)),
}
# SEQKIT_EXPORT_ALL=1: also every variant (with layer norm) as a 2-layer bidirectional stack, and
# the simple RNN (minutes on a shared 2-core machine)
ALL_CASES = {
    "torch-tokens-mean": ("marker", partial(ManyToOneHead, pooling="mean"), partial(LSTMStack, hidden_size=8)),
    "seqkit-cifg-peepholes-perstep-features": ("features", PerStepHead,
                                               partial(LSTMStack, hidden_size=8, variant="cifg", peepholes=True)),
    **{f"seqkit-{v}-layernorm-bi-2layer": ("marker", ManyToOneHead,
                                          partial(LSTMStack, hidden_size=8, variant=v, layer_norm=True,
                                                  bidirectional=True, num_layers=2))
       for v in VARIANTS},
    "torch-bi-2layer-proj-perstep": ("marker", PerStepHead, partial(LSTMStack, hidden_size=8, num_layers=2,
                                                                     bidirectional=True, proj_size=4)),
    "srn-features-bi": ("features", ManyToOneHead, partial(SimpleRNNStack, hidden_size=8, bidirectional=True)),
}


def _model(data, head, rnn):
    spec = _marker_spec() if data == "marker" else FEATURES
    encoder = partial(TokenEmbedding, embedding_dim=6) if data == "marker" else partial(FeatureProjection, size=4)
    torch.manual_seed(0)
    return SequenceModel(head=head, rnn=rnn, encoder=encoder, spec=spec).eval()


def _parity(case, tmp_path):
    model = _model(*case)
    path = str(tmp_path / "model.onnx")
    info = export_onnx(model, path)
    assert [i["name"] for i in info["inputs"]] == ["inputs", "lengths"]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for seed, (B, T) in enumerate([(2, 9), (7, 4)]):  # batch and length both differ from the export's (3, 5)
        inputs, lengths = example_inputs(model.spec, B, T, seed=10 + seed)
        assert len(set(lengths.tolist())) > 1  # ragged
        ref = torch_outputs(model, inputs, lengths)
        (got,) = session.run(None, {"inputs": inputs.numpy(), "lengths": lengths.numpy()})
        assert got.shape == tuple(ref.shape)
        assert abs(got - ref.numpy()).max() < TOL
    assert info["task_shape"] == ("per_step" if case[1] is PerStepHead else "many_to_one")


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_equals_pytorch(name, tmp_path):
    _parity(CASES[name], tmp_path)


@pytest.mark.skipif(not os.environ.get("SEQKIT_EXPORT_ALL"),
                    reason="every variant as a 2-layer bidirectional export takes minutes: set SEQKIT_EXPORT_ALL=1")
@pytest.mark.parametrize("name", list(ALL_CASES))
def test_onnxruntime_equals_pytorch_every_variant(name, tmp_path):
    _parity(ALL_CASES[name], tmp_path)


def test_export_command_on_a_checkpoint(tmp_path, capsys):
    import lightning.pytorch as pl
    import yaml

    from seqkit.marker import MarkerTaskData

    dm = MarkerTaskData(num_train=32, num_val=8, num_test=8, max_len=10, loader={"batch_size": 16})
    model = SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=8, variant="cifg", peepholes=True),
                          encoder=partial(TokenEmbedding, embedding_dim=6), spec=dm.spec)
    model.seqkit_config = yaml.safe_dump({
        "model": {"rnn": {"class_path": "LSTMStack",
                          "init_args": {"hidden_size": 8, "variant": "cifg", "peepholes": True}},
                  "encoder": {"class_path": "TokenEmbedding", "init_args": {"embedding_dim": 6}},
                  "head": {"class_path": "ManyToOneHead"}},
        "data": {"class_path": "seqkit.marker.MarkerTaskData",
                 "init_args": {"num_train": 32, "num_val": 8, "num_test": 8, "max_len": 10}},
    })
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)  # trained for a few steps: the weights differ from the init
    ckpt = str(tmp_path / "m.ckpt")
    trainer.save_checkpoint(ckpt)
    out = tmp_path / "export"
    assert export_command(["--ckpt_path", ckpt, "--format", "onnx", "--out", str(out)]) == 0
    assert "max |diff|" in capsys.readouterr().out
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["parity"]["max_abs_diff"] < TOL
    assert meta["labels"] == list(dm.labels)
    assert meta["vocabs"]["tokens"]["itos"] == dm.vocab.itos
    assert meta["graph"]["opset"] >= 17 and meta["graph"]["outputs"][0]["name"] == "logits"
    assert "variant=cifg, peepholes=True" in meta["graph"]["stack"]
    # a consumer needs nothing from seqkit: tokens through the vocabulary, the graph, the labels
    itos = meta["vocabs"]["tokens"]["itos"]
    ids = [[itos.index(t) for t in "a b # c d".split()]]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"inputs": torch.tensor(ids).numpy(), "lengths": torch.tensor([5]).numpy()})
    model.eval()
    ref = torch_outputs(model, torch.tensor(ids), torch.tensor([5]))
    assert meta["labels"][int(logits.argmax())] == meta["labels"][int(ref.argmax())]


def test_one_line_errors(tmp_path, monkeypatch, capsys):
    import importlib.util

    from seqkit.head import Head

    class Generating(Head):  # a head whose forward reads neither the Encoded nor the outputs
        def forward(self, tokens, state):  # noqa: D102
            return tokens

        def loss(self, encoded, batch, stage, encode):  # noqa: D102
            return torch.zeros(())

    model = SequenceModel(head=Generating, rnn=partial(LSTMStack, hidden_size=4), spec=FEATURES)
    with pytest.raises(ExportError, match="Generating has no exportable forward"):
        export_onnx(model, str(tmp_path / "x.onnx"))
    assert export_command(["--ckpt_path", str(tmp_path / "missing.ckpt")]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ExportError, match=r"pip install 'seqkit\[export\]' \(missing: onnxscript\)"):
        export_onnx(model, str(tmp_path / "x.onnx"))


# -- generating heads: the encoder graph, the decoder step, greedy decoding in numpy -------------


def test_decoder_step_export_decodes_like_pytorch(tmp_path):
    """A head on the decoder-step protocol (seqkit.seq2seq.AttentionDecoder, general attention
    with input feeding): greedy decoding over onnxruntime with numpy only equals
    ``decoder.generate`` token for token on 20 sources."""
    from seqkit.export import check_generator, export_generator, greedy_decode
    from seqkit.head import Head
    from seqkit.seq2seq import AttentionDecoder
    from seqkit.text import Vocab

    class TinySeq2Seq(Head):
        def __init__(self, spec, input_size):
            super().__init__(spec, input_size)
            self.vocab = spec.vocabs["target"]
            self.decoder = AttentionDecoder(len(self.vocab), input_size, 6, 8, attention="general",
                                            input_feeding=True, pad_id=self.vocab.pad_id)

        def start(self, encoded):
            return self.decoder.start(encoded.outputs, encoded.lengths, encoded.final)

        def loss(self, encoded, batch, stage, encode):  # noqa: D102
            return torch.zeros(())

    src, tgt = Vocab.build([list("abcdefg")]), Vocab.build([list("xyzuvw")])
    spec = Spec(input_kind="tokens", input_size=len(src), pad_id=src.pad_id, vocabs={"source": src, "target": tgt})
    torch.manual_seed(0)
    model = SequenceModel(head=TinySeq2Seq, rnn=partial(LSTMStack, hidden_size=4, bidirectional=True),
                          encoder=partial(TokenEmbedding, embedding_dim=5), spec=spec).eval()
    info = export_generator(model, str(tmp_path))
    assert info["decoder_step"]["inputs"] == ["tokens", "h", "c", "feed", "memory", "keys", "mask"]
    assert info["decoder_step"]["outputs"] == ["log_probs", "h_out", "c_out", "feed_out", "attention"]
    assert check_generator(model, str(tmp_path), sentences=20) == 20
    # the outputs are not trivial: hypotheses of several lengths
    inputs, lengths = example_inputs(spec, 20, 9, seed=1)
    enc = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    step = ort.InferenceSession(str(tmp_path / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    _, out_len = greedy_decode(enc, step, inputs.numpy(), lengths.numpy(), tgt.bos_id, tgt.eos_id,
                               (lengths + 5).numpy())
    assert len(set(out_len.tolist())) > 1
