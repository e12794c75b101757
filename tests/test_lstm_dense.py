"""The dense path of LSTMStack for padded batches with lengths (seqkit/lstm.py,
``_forward_dense``): outputs, final states and gradients equal torch's packed reference
(pack_padded_sequence + nn.LSTM with the same weights), and seqkit's own recurrence agrees with
it too. Also the loud guard on the private torch op the dense path calls (seqkit.cells)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit import LSTMStack
from seqkit import lstm as lstm_mod
from seqkit.cells import torch_lstm_layer

I = 5  # input features

LENGTHS = {
    "ragged": [7, 3, 1, 5, 7, 2],
    "equal": [7] * 6,
    "equal_short": [4] * 6,  # all equal but shorter than T: the steps past them never run
    "one": [1] * 6,
    "mixed_one": [1, 7, 1, 2, 1, 6],
}


def _reference(stack: LSTMStack, x, lens, state=None):
    """pack_padded_sequence + the stack's own nn.LSTM: what the dense path must equal."""
    B, T, _ = x.shape  # batch, time, input features
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    out, (h, c) = stack.lstm(packed, state)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*P)
    return out, (h, c)


def _grads(out, h, c, inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in (out, h, c))
    return torch.autograd.grad(loss, inputs)


def _close(a, b, dtype):
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == torch.float64 else dict(atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(a, b, **tol)


@pytest.fixture(params=[False, True], ids=["auto", "forced_dense"])
def force_dense(request, monkeypatch):
    """Run once as LSTMStack chooses and once with the dense path forced on CPU."""
    if request.param:
        monkeypatch.setitem(lstm_mod._FORCE, "torch", False)
    return request.param


@pytest.mark.parametrize(
    "layers,bidirectional,proj,lengths,dtype",
    [(L, bi, proj, lengths, torch.float64)
     for L, bi, proj in [(1, False, 0), (1, True, 0), (2, False, 0), (2, True, 0), (2, True, 3), (1, False, 3)]
     for lengths in LENGTHS]
    # float32, where the padding flag's ±1e4 must still saturate σ exactly
    + [(2, True, 0, "ragged", torch.float32), (1, False, 3, "mixed_one", torch.float32)],
)
def test_dense_equals_packed(layers, bidirectional, proj, lengths, dtype, force_dense):
    torch.manual_seed(0)
    stack = LSTMStack(I, 8, layers, bidirectional=bidirectional, proj_size=proj).to(dtype)
    assert stack.implementation == "torch"
    lens = torch.tensor(LENGTHS[lengths])
    B, T = len(lens), 7  # batch, time
    x = torch.randn(B, T, I, dtype=dtype, requires_grad=True)
    # garbage on padding (even inf / nan) must not matter
    with torch.no_grad():
        pad = torch.arange(T).unsqueeze(0) >= lens.unsqueeze(1)  # (B, T)
        x[pad] = 1e3
        if lengths == "ragged":
            x[1, 5] = float("nan")
            x[2, 6] = float("inf")
    out, (h, c) = stack(x, lens)
    ref, (rh, rc) = _reference(stack, x, lens)
    _close(out, ref, dtype)
    _close(h, rh, dtype)
    _close(c, rc, dtype)
    assert torch.all(out[pad] == 0)
    params = [x] + list(stack.parameters())
    got, want = _grads(out, h, c, params), _grads(ref, rh, rc, params)
    for name, a, b in zip(["x"] + [n for n, _ in stack.named_parameters()], got, want):
        assert torch.isfinite(a).all(), name
        _close(a, b, dtype)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_initial_state_and_empty_sequences(bidirectional, force_dense):
    """An initial state is used; a length-0 sequence keeps it and has zero outputs."""
    torch.manual_seed(0)
    stack = LSTMStack(I, 8, 2, bidirectional=bidirectional).double()
    D = 2 if bidirectional else 1
    lens = torch.tensor([5, 0, 3, 1])
    B, T = 4, 6  # batch, time
    x = torch.randn(B, T, I, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2 * D, B, 8, dtype=torch.double, requires_grad=True)
    c0 = torch.randn(2 * D, B, 8, dtype=torch.double, requires_grad=True)
    out, (h, c) = stack(x, lens, (h0, c0))
    real = lens > 0
    ref, (rh, rc) = _reference(stack, x[real], lens[real], (h0[:, real], c0[:, real]))
    _close(out[real], ref, torch.double)
    _close(h[:, real], rh, torch.double)
    _close(c[:, real], rc, torch.double)
    assert torch.all(out[1] == 0)
    assert torch.equal(h[:, 1], h0[:, 1]) and torch.equal(c[:, 1], c0[:, 1])
    # gradients: the reference is the packed run of the non-empty rows, plus the identity on
    # the empty row's state
    params = [x, h0, c0] + list(stack.parameters())
    got = _grads(out, h, c, params)
    g = torch.Generator().manual_seed(1)
    go, gh, gc = (torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (out, h, c))
    loss = (ref * go[real]).sum() + (rh * gh[:, real]).sum() + (rc * gc[:, real]).sum()
    loss = loss + (h0[:, ~real] * gh[:, ~real]).sum() + (c0[:, ~real] * gc[:, ~real]).sum()
    want = torch.autograd.grad(loss, params)
    for a, b in zip(got, want):
        _close(a, b, torch.double)


def test_all_empty_keeps_state():
    stack = LSTMStack(I, 8, 1).double()
    x = torch.randn(3, 4, I, dtype=torch.double)
    h0, c0 = torch.randn(1, 3, 8, dtype=torch.double), torch.randn(1, 3, 8, dtype=torch.double)
    out, (h, c) = stack(x, torch.zeros(3, dtype=torch.long), (h0, c0))
    assert torch.all(out == 0) and out.shape == (3, 4, 8)
    assert torch.equal(h, h0) and torch.equal(c, c0)


def test_dropout_between_layers(force_dense):
    """Inter-layer dropout runs on the dense path: eval equals the packed reference, training
    differs from eval, keeps padding zero and back-propagates."""
    torch.manual_seed(0)
    stack = LSTMStack(I, 8, 2, bidirectional=True, dropout=0.5).double()
    lens = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, I, dtype=torch.double, requires_grad=True)
    stack.eval()
    out, (h, c) = stack(x, lens)
    ref, (rh, rc) = _reference(stack, x, lens)
    _close(out, ref, torch.double)
    _close(h, rh, torch.double)
    stack.train()
    out_t, (h_t, _) = stack(x, lens)
    assert not torch.allclose(out_t, out)
    assert torch.all(out_t[1, 2:] == 0)
    out_t.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_state_dict_keys_unchanged():
    """The dense path adds no parameters nor persistent buffers: checkpoints stay loadable."""
    stack = LSTMStack(I, 8, 2, bidirectional=True, proj_size=3)
    assert set(stack.state_dict()) == {"lstm." + n for n, _ in stack.lstm.named_parameters()}
    assert "lstm.weight_ih_l0" in stack.state_dict()


def _copy_from_torch(seq: LSTMStack, tor: LSTMStack) -> None:
    """Weights of the torch backend into seqkit's own layers (gate rows (i, f, g, o) -> (i, f, o, g))."""
    H = seq.hidden_size

    def perm(w):
        i, f, g, o = w.split(H, 0)
        return torch.cat([i, f, o, g], 0)

    with torch.no_grad():
        for k, layer in enumerate(seq.layers):
            sfx = f"_l{k // seq.num_directions}" + ("_reverse" if k % seq.num_directions else "")
            layer.weight_ih.copy_(perm(getattr(tor.lstm, "weight_ih" + sfx)))
            layer.weight_hh.copy_(perm(getattr(tor.lstm, "weight_hh" + sfx)))
            layer.bias.copy_(perm(getattr(tor.lstm, "bias_ih" + sfx) + getattr(tor.lstm, "bias_hh" + sfx)))
            if layer.weight_hr is not None:
                layer.weight_hr.copy_(getattr(tor.lstm, "weight_hr" + sfx))


@pytest.mark.parametrize("lengths", ["ragged", "equal", "one", "mixed_one"])
@pytest.mark.parametrize("layers,bidirectional,proj", [(1, False, 0), (2, True, 0), (2, True, 3)])
def test_seqkit_backend_matches_packed_reference(layers, bidirectional, proj, lengths):
    torch.manual_seed(0)
    tor = LSTMStack(I, 8, layers, bidirectional=bidirectional, proj_size=proj).double()
    seq = LSTMStack(I, 8, layers, bidirectional=bidirectional, proj_size=proj, backend="seqkit").double()
    _copy_from_torch(seq, tor)
    lens = torch.tensor(LENGTHS[lengths])
    x = torch.randn(len(lens), 7, I, dtype=torch.double, requires_grad=True)
    out, (h, c) = seq(x, lens)
    ref, (rh, rc) = _reference(tor, x, lens)
    _close(out, ref, torch.double)
    _close(h, rh, torch.double)
    _close(c, rc, torch.double)
    gx, = _grads(out, h, c, [x])
    rx, = _grads(ref, rh, rc, [x])
    _close(gx, rx, torch.double)


def test_private_torch_lstm_op_still_works():
    """LOUD GUARD: seqkit.cells.torch_lstm_layer calls ``torch.lstm``, the undocumented op behind
    nn.LSTM.forward, with its positional signature (input, (h0, c0), weights, has_biases,
    num_layers, dropout, train, bidirectional, batch_first). If a torch upgrade changes it,
    this test fails: fix torch_lstm_layer (the only caller of a private torch API here)."""
    torch.manual_seed(0)
    for proj in (0, 3):
        ref = torch.nn.LSTM(I, 8, batch_first=True, proj_size=proj).double()
        P = proj or 8
        x = torch.randn(4, 6, I, dtype=torch.double)
        h0, c0 = torch.randn(1, 4, P, dtype=torch.double), torch.randn(1, 4, 8, dtype=torch.double)
        want, (wh, wc) = ref(x, (h0, c0))
        out, h, c = torch_lstm_layer(x, h0, c0, list(ref._flat_weights), False)
        assert out.shape == (4, 6, P) and h.shape == (1, 4, P) and c.shape == (1, 4, 8)
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(h, wh)
        torch.testing.assert_close(c, wc)
