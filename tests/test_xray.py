"""The LSTM X-ray (seqkit/xray.py): the traced gates, recomputed from the weights, reproduce the
stack's own h and C at every step, for torch.nn.LSTM and every variant of seqkit's recurrence;
the trace's files; the GateTrace callback with and without TensorBoard; ``seqkit trace``."""

from __future__ import annotations

import json
import os
from functools import partial

import numpy as np
import pytest
import torch

from seqkit.cells import VARIANTS
from seqkit.lstm import LSTMStack
from seqkit.srn import SimpleRNNStack
from seqkit.xray import DIRECTIONS, GateTrace, trace_command, trace_stack, write_outputs

I, H = 5, 6  # input size, hidden size
LENGTHS = torch.tensor([7, 3, 5, 1])  # ragged, one sequence of a single step


def _inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(len(LENGTHS), int(LENGTHS.max()), I, generator=torch.Generator().manual_seed(seed))


def _layer_stack(stack, layer: int):
    """A one-layer copy of ``stack``'s layer ``layer`` (both directions), to run it alone."""
    if isinstance(stack, SimpleRNNStack):
        one = SimpleRNNStack(stack.rnn.input_size if layer == 0 else stack.output_size, stack.hidden_size,
                             bidirectional=stack.bidirectional)
        src, dst = stack.rnn, one.rnn
    else:
        s = stack.cell_spec
        in_size = stack.input_size if layer == 0 else stack.output_size
        one = LSTMStack(in_size, stack.hidden_size, bidirectional=stack.bidirectional, proj_size=stack.proj_size,
                        variant=s.variant, peepholes=s.peepholes, layer_norm=s.layer_norm, backend=stack.implementation)
        if stack.implementation == "seqkit":
            D = stack.num_directions
            for d in range(D):
                one.layers[d].load_state_dict(stack.layers[layer * D + d].state_dict())
            return one.eval()
        src, dst = stack.lstm, one.lstm
    with torch.no_grad():
        for name, p in dst.named_parameters():
            p.copy_(getattr(src, name.replace("_l0", f"_l{layer}")))
    return one.eval()


def _layer_input(trace, x, layer: int) -> torch.Tensor:
    if layer == 0:
        return x
    parts = [torch.from_numpy(np.nan_to_num(trace.values[(layer - 1, d, "h")])) for d in trace.directions]
    return torch.cat(parts, -1)


def _check_every_step(stack, x, lengths, atol=2e-5):
    """trace == the stack: outputs, final state, and h and C of every layer and direction at every
    real step (prefix runs for the forward direction, suffix runs for the backward one)."""
    trace = trace_stack(stack, x, lengths)
    with torch.no_grad():
        out, (h, c) = stack(x, lengths)
    torch.testing.assert_close(trace.outputs, out, atol=atol, rtol=0)
    torch.testing.assert_close(trace.final[0], h, atol=atol, rtol=0)
    torch.testing.assert_close(trace.final[1], c, atol=atol, rtol=0)
    has_cell = not isinstance(stack, SimpleRNNStack)
    B, T, _ = x.shape
    for layer in range(stack.num_layers):
        one = _layer_stack(stack, layer)
        inp = _layer_input(trace, x, layer)
        with torch.no_grad():
            outs, _ = one(inp, lengths)
        P = outs.shape[-1] // one.num_directions
        for d, direction in enumerate(trace.directions):
            h_trace = trace.values[(layer, direction, "h")]  # (B, T, P), NaN on padding
            for b in range(B):
                n = int(lengths[b])
                np.testing.assert_allclose(h_trace[b, :n], outs[b, :n, d * P:(d + 1) * P].numpy(), atol=atol, rtol=0)
                assert np.isnan(h_trace[b, n:]).all()
            if not has_cell:
                continue
            c_trace = trace.values[(layer, direction, "cell")]
            for t in range(T):
                if direction == "forward":  # C after step t: the final C of the first t+1 steps
                    part, lens, rows = inp[:, : t + 1], lengths.clamp(max=t + 1), lengths > t
                else:  # the backward direction at step t has read steps len-1 .. t
                    part, lens, rows = inp[:, t:], (lengths - t).clamp(min=0), lengths > t
                with torch.no_grad():
                    _, (_, cT) = one(part.contiguous(), lens)
                np.testing.assert_allclose(c_trace[rows.numpy(), t], cT[d][rows].numpy(), atol=atol, rtol=0)
    return trace


TORCH_CONFIGS = {
    "torch": dict(),
    "torch-bi-2layer": dict(num_layers=2, bidirectional=True),
    "torch-proj-bi-2layer": dict(num_layers=2, bidirectional=True, proj_size=3),
}


@pytest.mark.parametrize("name", list(TORCH_CONFIGS))
def test_trace_reproduces_torch_lstm(name):
    stack = LSTMStack(I, H, **TORCH_CONFIGS[name]).eval()
    assert stack.implementation == "torch"
    trace = _check_every_step(stack, _inputs(), LENGTHS)
    assert not trace.absent


def test_gates_recompute_h_and_c():
    """The recorded quantities obey the LSTM's equations: C = f∗C₋₁ + i∗C̃ and h = o∗tanh(C)."""
    stack = LSTMStack(I, H).eval()
    tr = trace_stack(stack, _inputs(1), LENGTHS)
    v = {q: tr.values[(0, "forward", q)] for q in ("input", "forget", "output", "candidate", "cell", "cell_abs", "h")}
    for b, n in enumerate(LENGTHS.tolist()):
        c_prev = np.zeros(H, dtype=np.float32)
        for t in range(n):
            c = v["forget"][b, t] * c_prev + v["input"][b, t] * v["candidate"][b, t]
            np.testing.assert_allclose(v["cell"][b, t], c, atol=1e-6)
            np.testing.assert_allclose(v["h"][b, t], v["output"][b, t] * np.tanh(c), atol=1e-6)
            np.testing.assert_allclose(v["cell_abs"][b, t], np.abs(c), atol=1e-6)
            c_prev = c


@pytest.mark.parametrize("variant", VARIANTS)
def test_trace_reproduces_every_variant(variant):
    stack = LSTMStack(I, H, num_layers=2, variant=variant, backend="seqkit").eval()
    trace = _check_every_step(stack, _inputs(2), LENGTHS)
    absent = {q for (_, _, q) in trace.absent}
    expected = {"nig": {"input"}, "nfg": {"forget"}, "nog": {"output"}}.get(variant, set())
    assert absent == expected
    for q in expected:
        assert (0, "forward", q) not in trace.values
    if variant == "cifg":  # the coupled input gate is recorded as what it is: 1 - f
        np.testing.assert_allclose(trace.values[(0, "forward", "input")], 1 - trace.values[(0, "forward", "forget")],
                                   atol=1e-6)


@pytest.mark.parametrize("cfg", [
    dict(variant="fgr", peepholes=True, layer_norm=True, proj_size=3, bidirectional=True, num_layers=2),
    dict(variant="cifg", peepholes=True, layer_norm=True, bidirectional=True),
], ids=["fgr-peep-ln-proj-bi", "cifg-peep-ln-bi"])
def test_trace_reproduces_combined_options(cfg):
    _check_every_step(LSTMStack(I, H, **cfg).eval(), _inputs(3), LENGTHS)


def test_trace_of_the_simple_rnn_has_h_only():
    stack = SimpleRNNStack(I, H, num_layers=2, bidirectional=True).eval()
    trace = _check_every_step(stack, _inputs(4), LENGTHS)
    assert {q for (_, _, q) in trace.values} == {"h"}
    assert "simple RNN" in trace.absent[(0, "forward", "forget")]


def test_outputs_npz_pngs_and_saturation(tmp_path):
    stack = LSTMStack(I, H, variant="nog", bidirectional=True, backend="seqkit").eval()
    trace = trace_stack(stack, _inputs(5), LENGTHS)
    result = write_outputs(trace, str(tmp_path), examples=1)
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(["trace.npz", "saturation.csv", "saturation.json"]
                           + [f"example0_layer0_{d}.png" for d in DIRECTIONS])
    with np.load(tmp_path / "trace.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert z["l0.backward.forget"].shape == (4, 7, H)
        assert "l0.forward.output" not in z.files
        assert "no output gate" in meta["absent"]["l0.forward.output"]
        np.testing.assert_array_equal(z["lengths"], LENGTHS.numpy())
    rows = {(r["direction"], r["gate"]): r for r in result["saturation"]}
    assert rows[("forward", "output")]["below"] is None and rows[("forward", "output")]["note"]
    f = trace.values[(0, "forward", "forget")]
    f = f[~np.isnan(f)]
    assert rows[("forward", "forget")]["count"] == int(LENGTHS.sum()) * H
    assert rows[("forward", "forget")]["above"] == pytest.approx(float((f > 0.9).mean()), abs=1e-4)
    for png in (p for p in names if p.endswith(".png")):
        assert (tmp_path / png).stat().st_size < 100_000


# -- the callback and the command ---------------------------------------------------------------


def _marker_model(hidden: int = 8):
    from seqkit.encoders import TokenEmbedding
    from seqkit.heads import ManyToOneHead
    from seqkit.marker import MarkerTaskData
    from seqkit.model import SequenceModel

    dm = MarkerTaskData(num_train=32, num_val=16, num_test=16, max_len=12, loader={"batch_size": 16})
    model = SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=hidden),
                          encoder=partial(TokenEmbedding, embedding_dim=6), spec=dm.spec)
    return model, dm


def _fit(model, dm, tmp_path, logger, callbacks=(), steps=4):
    import lightning.pytorch as pl

    trainer = pl.Trainer(max_steps=steps, val_check_interval=2, limit_val_batches=1, logger=logger,
                         callbacks=list(callbacks), enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)
    return trainer


def test_gate_trace_writes_pngs_without_tensorboard(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    model, dm = _marker_model()
    _fit(model, dm, tmp_path, CSVLogger(str(tmp_path), name="run"), [GateTrace(every_n=2, examples=1)])
    found = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path) for f in fs if f.endswith(".png")]
    assert len(found) == 1 and os.sep + "xray" + os.sep in found[0]  # 2 validations, every 2nd traced
    assert os.path.exists(os.path.join(os.path.dirname(found[0]), "trace.npz"))


def test_gate_trace_logs_images_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'seqkit[tensorboard]')")
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, dm = _marker_model()
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    _fit(model, dm, tmp_path, logger, [GateTrace(every_n=1, examples=1)])
    acc = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    acc.Reload()
    images = acc.Tags()["images"]
    assert "xray/example0_layer0_forward" in images
    assert len(acc.Images("xray/example0_layer0_forward")) == 2  # one per validation
    assert any(t.startswith("xray_saturation/l0.forward.forget") for t in acc.Tags()["scalars"])


def test_trace_command_from_checkpoint(tmp_path, capsys):
    import lightning.pytorch as pl
    import yaml

    model, dm = _marker_model()
    model.seqkit_config = yaml.safe_dump({
        "model": {"rnn": {"class_path": "seqkit.lstm.LSTMStack", "init_args": {"hidden_size": 8}},
                  "encoder": {"class_path": "seqkit.encoders.TokenEmbedding", "init_args": {"embedding_dim": 6}},
                  "head": {"class_path": "seqkit.heads.ManyToOneHead"}},
        "data": {"class_path": "seqkit.marker.MarkerTaskData",
                 "init_args": {"num_train": 32, "num_val": 16, "num_test": 16, "max_len": 12}},
    })
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=dm)
    ckpt = str(tmp_path / "m.ckpt")
    trainer.save_checkpoint(ckpt)
    text = tmp_path / "in.txt"
    text.write_text("a b # c d\nh # e\n")
    out = tmp_path / "trace"
    assert trace_command(["--ckpt_path", ckpt, "--input", str(text), "--examples", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "traced 2 sequences" in printed and "forget" in printed
    with np.load(out / "trace.npz", allow_pickle=False) as z:
        assert z["labels"][0].tolist() == ["a", "b", "#", "c", "d"]
        assert z["l0.forward.forget"].shape == (2, 5, 8)
    assert (out / "example1_layer0_forward.png").exists() and (out / "saturation.csv").exists()
    assert trace_command(["--ckpt_path", ckpt, "--split", "val", "--examples", "1", "--out", str(tmp_path / "v")]) == 0
    assert trace_command(["--ckpt_path", str(tmp_path / "nope.ckpt"), "--split", "val", "--out", str(out)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_tensorboard_layer_parses_and_appends_callbacks(tmp_path):
    """configs/trainer/tensorboard.yaml stacked after a task config: TensorBoardLogger, and GateTrace
    appended to the task's callbacks (adding.yaml's early stopping stays)."""
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'seqkit[tensorboard]')")
    import lightning.pytorch as pl
    import yaml
    from jsonargparse import ActionConfigFile
    from lightning.pytorch.cli import LightningArgumentParser

    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    base = yaml.safe_load(open(os.path.join(root, "longlag", "adding.yaml"), encoding="utf-8"))
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"trainer": base["trainer"]}))
    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_lightning_class_args(pl.Trainer, "trainer")
    cfg = parser.parse_args(["--config", str(task), "--config", os.path.join(root, "trainer", "tensorboard.yaml")])
    paths = [c.class_path for c in cfg.trainer.callbacks]
    assert paths == ["lightning.pytorch.callbacks.EarlyStopping", "seqkit.xray.GateTrace"]
    assert cfg.trainer.logger.class_path == "lightning.pytorch.loggers.TensorBoardLogger"
