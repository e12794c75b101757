"""The LSTM gate variants (Greff et al. 2016) of seqkit's own recurrence: exact against
torch.nn.LSTM, correct gradients, each variant's defining property, padding that never leaks,
and clear errors for bad options."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from conftest import CONFIGS, run_seqkit
from seqkit import LSTMStack, SeqkitError
from seqkit import cells
from seqkit.cells import VARIANTS

BIG = 30.0  # a gate bias that saturates the sigmoid: σ(30) = 1 - 1e-13, σ(-30) = 1e-13


def _perm(w: torch.Tensor, H: int) -> torch.Tensor:
    """nn.LSTM's gate rows (i, f, g, o) -> seqkit's (i, f, o, g)."""
    i, f, g, o = w.split(H, 0)
    return torch.cat([i, f, o, g], 0)


def copy_from_torch(stack: LSTMStack, lstm: torch.nn.LSTM) -> None:
    H = stack.hidden_size
    with torch.no_grad():
        for k, layer in enumerate(stack.layers):
            sfx = f"_l{k // stack.num_directions}" + ("_reverse" if k % stack.num_directions else "")
            layer.weight_ih.copy_(_perm(getattr(lstm, "weight_ih" + sfx), H))
            layer.weight_hh.copy_(_perm(getattr(lstm, "weight_hh" + sfx), H))
            layer.bias.copy_(_perm(getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx), H))
            if layer.weight_hr is not None:
                layer.weight_hr.copy_(getattr(lstm, "weight_hr" + sfx))


@pytest.mark.parametrize(
    "layers,bidirectional,H,proj,lengths",
    [
        (1, False, 8, 0, None),
        (2, True, 8, 0, [9, 4, 9, 1, 6]),
        (2, True, 8, 3, [2, 9, 5, 5, 7]),
        (3, False, 8, 2, [9, 9, 9, 9, 9]),
        (1, True, 512, 256, [3, 9, 1, 9, 2]),  # large enough for the oneDNN recurrent product
    ],
)
def test_custom_vanilla_matches_torch_lstm(layers, bidirectional, H, proj, lengths):
    torch.manual_seed(0)
    P = proj or H
    torch_stack = LSTMStack(5, H, layers, bidirectional, proj_size=proj)
    ours = LSTMStack(5, H, layers, bidirectional, proj_size=proj, backend="seqkit")
    if H >= 512 and cells._onednn_ok():
        assert cells._pack(ours.layers[0].weight_hh, 5) is not None
    assert (torch_stack.implementation, ours.implementation) == ("torch", "seqkit")
    copy_from_torch(ours, torch_stack.lstm)
    D = 2 if bidirectional else 1
    x = torch.randn(5, 9, 5)
    state = (torch.randn(layers * D, 5, P), torch.randn(layers * D, 5, H))
    lens = None if lengths is None else torch.tensor(lengths)
    results = []
    for stack in (torch_stack, ours):
        xi = x.clone().requires_grad_()
        st = tuple(s.clone().requires_grad_() for s in state)
        out, (h, c) = stack(xi, lens, st)
        w = torch.linspace(-1, 1, out.numel()).view_as(out)
        ((out * w).sum() + (h * 0.3).sum() + (c * 0.7).sum()).backward()
        results.append((out, h, c, xi.grad, st[0].grad, st[1].grad))
    for a, b in zip(*results):
        assert (a - b).abs().max().item() <= 1e-5
    # weight gradients, mapped to nn.LSTM's layout
    for k, layer in enumerate(ours.layers):
        sfx = f"_l{k // D}" + ("_reverse" if k % D else "")
        lstm = torch_stack.lstm
        assert (layer.weight_ih.grad - _perm(getattr(lstm, "weight_ih" + sfx).grad, H)).abs().max() <= 1e-5
        assert (layer.weight_hh.grad - _perm(getattr(lstm, "weight_hh" + sfx).grad, H)).abs().max() <= 1e-5
        assert (layer.bias.grad - _perm(getattr(lstm, "bias_ih" + sfx).grad, H)).abs().max() <= 1e-5
        if proj:
            assert (layer.weight_hr.grad - getattr(lstm, "weight_hr" + sfx).grad).abs().max() <= 1e-5


GRADCHECK_CASES = [(v, {}) for v in VARIANTS] + [
    ("vanilla", {"layer_norm": True}),
    ("cifg", {"layer_norm": True, "peepholes": True}),
    ("nog", {"peepholes": True, "proj_size": 2}),
    ("fgr", {"peepholes": True}),
    ("nig", {"peepholes": True, "layer_norm": True}),
]


@pytest.mark.parametrize("variant,options", GRADCHECK_CASES, ids=[f"{v}-{'-'.join(o)}" for v, o in GRADCHECK_CASES])
def test_gradcheck(variant, options):
    """Hand-written backward pass == finite differences, in float64, for inputs, initial state
    and every parameter, through 2 bidirectional layers with ragged lengths."""
    torch.manual_seed(1)
    stack = LSTMStack(2, 3, num_layers=2, bidirectional=True, variant=variant, backend="seqkit", **options).double()
    names = [n for n, _ in stack.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in stack.parameters()]
    P = options.get("proj_size") or 3
    x = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 3, P, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])

    def f(x, h0, c0, *ps):
        out, (h, c) = functional_call(stack, dict(zip(names, ps)), (x, lengths, (h0, c0)))
        return out, h, c

    # fast_mode: checks vᵀJu for random u, v instead of every entry of J (the same test, much faster)
    assert torch.autograd.gradcheck(f, (x, h0, c0, *params), eps=1e-6, atol=1e-6, fast_mode=True)


# -- each variant's defining property, seen from outside (one step from a given state) -------------
def _one_step(variant, bias=None, **kw):
    """Run one step of a 1-layer stack in float64 from a random state; gate biases overridden."""
    torch.manual_seed(2)
    stack = LSTMStack(3, 4, variant=variant, backend="seqkit", **kw).double()
    layer = stack.layers[0]
    with torch.no_grad():
        for name, value in (bias or {}).items():
            layer.gate(name, layer.bias).fill_(value)
    x = torch.randn(5, 1, 3, dtype=torch.float64)
    h0, c0 = torch.randn(1, 5, 4, dtype=torch.float64), 3 * torch.randn(1, 5, 4, dtype=torch.float64)
    _, (h1, c1) = stack(x, None, (h0, c0))
    pre = {n: x[:, 0] @ layer.gate(n, layer.weight_ih).T + h0[0] @ layer.gate(n, layer.weight_hh).T
           + layer.gate(n, layer.bias) for n in layer.spec.gate_names}  # gate pre-activations
    return h0[0], c0[0], h1[0], c1[0], pre, layer


def test_cifg_input_gate_is_one_minus_forget():
    h0, c0, h1, c1, pre, _ = _one_step("cifg")
    f = torch.sigmoid(pre["f"])
    torch.testing.assert_close(c1, f * c0 + (1 - f) * torch.tanh(pre["g"]))
    _, c0, _, c1, _, _ = _one_step("cifg", bias={"f": BIG})  # forget gate open => input gate shut
    torch.testing.assert_close(c1, c0)


def test_nfg_never_forgets():
    _, c0, _, c1, pre, _ = _one_step("nfg")
    torch.testing.assert_close(c1, c0 + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"]))
    _, c0, _, c1, _, _ = _one_step("nfg", bias={"i": -BIG})  # input shut: C = C₋₁ exactly
    torch.testing.assert_close(c1, c0)


def test_nig_adds_the_whole_candidate():
    _, c0, _, c1, pre, _ = _one_step("nig")
    torch.testing.assert_close(c1, torch.sigmoid(pre["f"]) * c0 + torch.tanh(pre["g"]))


def test_nog_h_is_tanh_c():
    _, _, h1, c1, _, _ = _one_step("nog")
    torch.testing.assert_close(h1, torch.tanh(c1))


def test_noaf_h_is_o_times_c():
    _, _, h1, c1, pre, _ = _one_step("noaf")
    torch.testing.assert_close(h1, torch.sigmoid(pre["o"]) * c1)
    assert c1.abs().max() > 1  # C itself, not squashed


def test_niaf_candidate_is_linear():
    _, _, _, c1, pre, _ = _one_step("niaf", bias={"f": -BIG, "i": BIG})  # C = C̃ = W_C·[h₋₁, x] + b_C
    torch.testing.assert_close(c1, pre["g"])


def test_vanilla_h_is_o_tanh_c():
    _, c0, h1, c1, pre, _ = _one_step("vanilla")
    torch.testing.assert_close(c1, torch.sigmoid(pre["f"]) * c0 + torch.sigmoid(pre["i"]) * torch.tanh(pre["g"]))
    torch.testing.assert_close(h1, torch.sigmoid(pre["o"]) * torch.tanh(c1))


@pytest.mark.parametrize("variant", ["peephole", "cifg", "nog"])
def test_peepholes_see_the_cell(variant):
    """i and f see C₋₁, o sees the new C (Gers & Schmidhuber 2000)."""
    kw = {} if variant == "peephole" else {"peepholes": True}
    _, c0, h1, c1, pre, layer = _one_step(variant, **kw)
    p = dict(zip(layer.spec.peephole_names, layer.peephole.detach()))
    f = torch.sigmoid(pre["f"] + p["f"] * c0)
    i = 1 - f if variant == "cifg" else torch.sigmoid(pre["i"] + p["i"] * c0)
    torch.testing.assert_close(c1, f * c0 + i * torch.tanh(pre["g"]))
    o = torch.sigmoid(pre["o"] + p["o"] * c1) if "o" in p else 1.0
    torch.testing.assert_close(h1, o * torch.tanh(c1))


def test_fgr_gates_see_previous_gates():
    torch.manual_seed(3)
    stack = LSTMStack(2, 3, variant="fgr", backend="seqkit").double()
    layer = stack.layers[0]
    with torch.no_grad():  # only biases and the gate-to-gate weights R: gates are σ(b + R·gates₋₁)
        layer.weight_ih.zero_()
        layer.weight_hh.zero_()
    x = torch.randn(1, 2, 2, dtype=torch.float64)
    _, (h, c) = stack(x)
    b, R = layer.bias.detach(), layer.weight_gg.detach()
    H = 3
    g = torch.tanh(b[3 * H:])
    a0 = torch.sigmoid(b[: 3 * H])  # step 1: no previous gates
    c_1 = a0[:H] * g
    a1 = torch.sigmoid(b[: 3 * H] + R @ a0)  # step 2
    c_2 = a1[H : 2 * H] * c_1 + a1[:H] * g
    torch.testing.assert_close(c[0, 0], c_2)
    torch.testing.assert_close(h[0, 0], a1[2 * H :] * torch.tanh(c_2))


def test_layer_norm_ignores_the_scale_of_the_projections():
    torch.manual_seed(4)
    stack = LSTMStack(3, 6, variant="cifg", layer_norm=True, backend="seqkit").double()
    layer = stack.layers[0]
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    with torch.no_grad():  # large enough that LN's epsilon (1e-5) is negligible
        layer.weight_ih.mul_(100.0)
        layer.weight_hh.mul_(100.0)
    out1, _ = stack(x)
    with torch.no_grad():  # LN(W·x) and LN(U·h) do not change when W and U are scaled
        layer.weight_ih.mul_(7.0)
        layer.weight_hh.mul_(0.2)
    out2, _ = stack(x)
    torch.testing.assert_close(out1, out2, rtol=1e-6, atol=1e-6)
    with torch.no_grad():  # while without LN they would
        plain = LSTMStack(3, 6, variant="cifg", backend="seqkit").double()
        plain.load_state_dict({k: v for k, v in stack.state_dict().items() if "ln_" not in k})
        out3, _ = plain(x)
        plain.layers[0].weight_hh.mul_(5.0)
        assert (plain(x)[0] - out3).abs().max() > 1e-3


# -- padding, state, stacking ---------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["vanilla", "peephole", "cifg", "fgr"])
def test_padding_never_leaks(variant):
    """Each sequence gives the same outputs and final state padded with garbage in a batch as
    alone, through 2 bidirectional layers (so the backward direction starts at its own end)."""
    torch.manual_seed(5)
    stack = LSTMStack(3, 4, num_layers=2, bidirectional=True, variant=variant).eval()
    lengths = torch.tensor([6, 2, 4, 0])
    x = torch.randn(4, 6, 3) * 100  # garbage everywhere, real steps are overwritten below
    seqs = [torch.randn(int(n), 3) for n in lengths]
    for b, s in enumerate(seqs):
        x[b, : len(s)] = s
    out, (h, c) = stack(x, lengths)
    for b, s in enumerate(seqs):
        n = len(s)
        assert out[b, n:].abs().max() == 0 if n < 6 else True
        if n == 0:
            assert h[:, b].abs().max() == 0 and c[:, b].abs().max() == 0  # the (zero) initial state
            continue
        alone, (ha, ca) = stack(s.unsqueeze(0))
        torch.testing.assert_close(out[b, :n], alone[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h[:, b], ha[:, 0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c[:, b], ca[:, 0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "seqkit"])
def test_empty_sequence_keeps_the_given_state(backend):
    torch.manual_seed(8)
    stack = LSTMStack(3, 4, num_layers=2, bidirectional=True, backend=backend)
    state = (torch.randn(4, 3, 4), torch.randn(4, 3, 4))
    out, (h, c) = stack(torch.randn(3, 5, 3), torch.tensor([5, 0, 2]), state)
    torch.testing.assert_close((h[:, 1], c[:, 1]), (state[0][:, 1], state[1][:, 1]))
    assert out[1].abs().max() == 0


def test_state_carries_across_calls():
    torch.manual_seed(6)
    stack = LSTMStack(3, 5, num_layers=2, variant="nfg", proj_size=2)
    x = torch.randn(3, 8, 3)
    whole, (h, c) = stack(x)
    first, state = stack(x[:, :5])
    second, (h2, c2) = stack(x[:, 5:], None, state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close((h2, c2), (h, c))
    assert h.shape == (2, 3, 2) and c.shape == (2, 3, 5)


def test_dropout_only_between_layers():
    torch.manual_seed(7)
    x = torch.randn(2, 4, 3)
    one = LSTMStack(3, 4, num_layers=1, dropout=0.5, variant="peephole").train()
    torch.testing.assert_close(one(x)[0], one(x)[0])  # a single layer: nothing to drop
    two = LSTMStack(3, 4, num_layers=2, dropout=0.5, variant="peephole").train()
    assert not torch.equal(two(x)[0], two(x)[0])
    two.eval()
    torch.testing.assert_close(two(x)[0], two(x)[0])


def test_mixed_precision_computes_in_the_weights_dtype():
    torch.manual_seed(9)
    stack = LSTMStack(3, 4, variant="peephole", layer_norm=True)
    x = torch.randn(2, 5, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = stack(x, torch.tensor([5, 2]))
    out.sum().backward()
    assert out.dtype == h.dtype == torch.float32 and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out, stack(x, torch.tensor([5, 2]))[0])


def test_loops_are_torchscript():
    """The fast path really runs the scripted loops (a silent fallback would be 3x slower)."""
    fwd, bwd = cells._loops()
    assert isinstance(fwd, torch.jit.ScriptFunction) and isinstance(bwd, torch.jit.ScriptFunction)


def test_paths_are_chosen_automatically():
    assert LSTMStack(3, 4).implementation == "torch"
    for kw in ({"variant": "peephole"}, {"peepholes": True}, {"layer_norm": True}, {"variant": "cifg"}):
        assert LSTMStack(3, 4, **kw).implementation == "seqkit"


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(SeqkitError, match="unknown variant 'lstm2'.*vanilla, peephole, nig, nfg, nog, niaf, noaf, cifg, fgr"):
        LSTMStack(3, 4, variant="lstm2")


def test_options_a_variant_cannot_take():
    with pytest.raises(ValueError, match="forget_bias=1.0 cannot be used with variant='nfg'.*no forget gate"):
        LSTMStack(3, 4, variant="nfg", forget_bias=1.0)
    with pytest.raises(SeqkitError, match="backend='torch'.*cannot run variant='cifg'"):
        LSTMStack(3, 4, variant="cifg", backend="torch")
    with pytest.raises(SeqkitError, match="backend='torch'.*cannot run layer_norm=True"):
        LSTMStack(3, 4, layer_norm=True, backend="torch")


def test_cli_errors_are_one_line(tmp_path):
    cfg = str(CONFIGS / "variants.yaml")
    bad = run_seqkit("fit", "--config", cfg, "--model.rnn.init_args.variant=lstm2", cwd=tmp_path, check=False)
    assert bad.returncode != 0
    assert "variant" in bad.stderr and "cifg" in bad.stderr and "peephole" in bad.stderr, bad.stderr[-2000:]
    clash = run_seqkit("fit", "--config", cfg, "--model.rnn.init_args.variant=nfg",
                       "--model.rnn.init_args.forget_bias=2.0", cwd=tmp_path, check=False)
    assert clash.returncode != 0
    err = clash.stderr.strip().splitlines()
    assert err[-1].startswith("seqkit: error:") and "forget_bias" in err[-1] and "nfg" in err[-1], clash.stderr[-2000:]
    assert "Traceback" not in clash.stderr
