"""Speed of seqkit's LSTM stack against raw torch.nn.LSTM: forward plus backward, in one process.

    python benchmarks/lstm_speed.py                  # CPU, the three configurations below
    python benchmarks/lstm_speed.py --device cuda    # the same on a GPU

Times, for each configuration, raw ``torch.nn.LSTM``, seqkit's ``LSTMStack`` on the plain path
(which runs torch.nn.LSTM), and seqkit's own recurrence for the ``peephole`` and ``cifg`` variants.
The four are interleaved run by run (so a machine that slows down mid-way slows all of them), and
each figure is the median of ``--runs`` timed runs after ``--warmup`` untimed ones. The last lines
give each one's median time relative to raw nn.LSTM's in the same run:

    ratio <config> plain=<x> peephole=<x> cifg=<x>

``--lengths`` times instead what training runs: the stack called with ``lengths`` (all equal to T,
or ragged: lognormal, clipped to [5, T]) against raw nn.LSTM on the same padded batch without
lengths (which computes every padded step, so it does at least as much work). Each seqkit run is
paired with a baseline run right before or after it (the order alternates), and each line gives
the median (min-max) of the per-pair ratios:

    lengths <size> <equal|ragged> <impl> <median> (<min>-<max>)

    python benchmarks/lstm_speed.py --lengths --threads 1 --clock cpu
    python benchmarks/lstm_speed.py --lengths --impls plain,layer_norm --sizes s

``--pack-vs-dense`` times the torch backend's two ways with ragged lengths against each other
(packed time / dense time per pair; > 1: dense wins), and says which one LSTMStack picks:

    pack/dense <size> <lengths> <median> (<min>-<max>) picks <packed|dense>

Configurations (batch B, steps T, input size I, hidden size H, layers L):
    a: B=64, T=100,  I=64,  H=128, L=1
    b: B=32, T=200,  I=256, H=512, L=2
    c: B=32, T=1000, I=2,   H=64,  L=1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from seqkit.lstm import LSTMStack  # noqa: E402

CONFIGS = {
    "a": dict(B=64, T=100, I=64, H=128, L=1),
    "b": dict(B=32, T=200, I=256, H=512, L=2),
    "c": dict(B=32, T=1000, I=2, H=64, L=1),
}
IMPLS = ("nn.LSTM", "plain", "peephole", "cifg")


class _Raw(torch.nn.Module):
    def __init__(self, I: int, H: int, L: int) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(I, H, L, batch_first=True)

    def forward(self, x):
        return self.lstm(x)


def build(name: str, I: int, H: int, L: int) -> torch.nn.Module:
    if name == "nn.LSTM":
        return _Raw(I, H, L)
    if name == "plain":
        stack = LSTMStack(I, H, L)
        assert stack.implementation == "torch"
        return stack
    return LSTMStack(I, H, L, variant=name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_run(model: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor, device: torch.device, clock) -> float:
    """Seconds for forward plus backward (gradients of the weights and of the input)."""
    model.zero_grad(set_to_none=True)
    x.grad = None
    sync(device)
    t0 = clock()
    out, _ = model(x)
    out.backward(grad)
    sync(device)
    return clock() - t0


def bench(key: str, runs: int, warmup: int, device: torch.device, clock=time.perf_counter) -> dict[str, list[float]]:
    c = CONFIGS[key]
    torch.manual_seed(0)
    models = {name: build(name, c["I"], c["H"], c["L"]).to(device) for name in IMPLS}
    x = torch.randn(c["B"], c["T"], c["I"], device=device, requires_grad=True)
    grad = torch.randn(c["B"], c["T"], c["H"], device=device)
    times: dict[str, list[float]] = {name: [] for name in IMPLS}
    for r in range(warmup + runs):
        # rotate the order every run so no implementation always goes first
        names = IMPLS[r % len(IMPLS):] + IMPLS[: r % len(IMPLS)]
        for name in names:
            t = one_run(models[name], x, grad, device, clock)
            if r >= warmup:
                times[name].append(t)
    return times


SIZES = {  # the sizes of issue 13: batch B, steps T, hidden size H (input size I = H)
    "s": dict(B=16, T=20, H=64),
    "m": dict(B=32, T=100, H=256),
    "l": dict(B=64, T=50, H=512),
}
# plain, then every variant of seqkit's own recurrence, then the two add-ons on vanilla
LENGTH_IMPLS = ("plain", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr", "layer_norm")


def build_with_lengths(name: str, I: int, H: int) -> LSTMStack:
    if name == "plain":
        return LSTMStack(I, H)
    if name == "layer_norm":
        return LSTMStack(I, H, layer_norm=True)
    return LSTMStack(I, H, variant=name)


def make_lengths(kind: str, B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    """All T, or lognormal around T/2, clipped to [5, T] (integers)."""
    if kind == "equal":
        return torch.full((B,), T, dtype=torch.long)
    z = torch.randn(B, generator=gen)
    return (torch.exp(torch.log(torch.tensor(T / 2.0)) + 0.6 * z)).round().long().clamp(5, T)


def bench_lengths(size: str, kind: str, impls, pairs: int, warmup: int, clock) -> dict[str, list[float]]:
    """Per-pair ratios seqkit-with-lengths / raw-nn.LSTM-padded, forward + backward."""
    c = SIZES[size]
    B, T, H = c["B"], c["T"], c["H"]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    raw = _Raw(H, H, 1)
    x = torch.randn(B, T, H, requires_grad=True)
    grad = torch.randn(B, T, H)
    ratios: dict[str, list[float]] = {}
    for name in impls:
        model = build_with_lengths(name, H, H)
        lens = make_lengths(kind, B, T, gen)

        def ours():
            model.zero_grad(set_to_none=True)
            x.grad = None
            t0 = clock()
            out, _ = model(x, lens)
            out.backward(grad)
            return clock() - t0

        def base():
            return one_run(raw, x, grad, torch.device("cpu"), clock)

        ratios[name] = []
        for r in range(warmup + pairs):
            if r % 2:  # alternate which of the pair goes first
                tb, ts = base(), ours()
            else:
                ts, tb = ours(), base()
            if r >= warmup:
                ratios[name].append(ts / tb)
    return ratios


def main_lengths(args) -> None:
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    impls = args.impls.split(",") if args.impls else LENGTH_IMPLS
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {args.clock} clock; "
          f"forward + backward with lengths vs raw nn.LSTM padded without lengths; "
          f"median (min-max) of {args.runs} interleaved pairs")
    for size in args.sizes:
        c = SIZES[size]
        for kind in ("equal", "ragged"):
            ratios = bench_lengths(size, kind, impls, args.runs, args.warmup, clock)
            for name, rs in ratios.items():
                print(f"lengths B{c['B']}-T{c['T']}-H{c['H']} {kind:<6} {name:<10} {statistics.median(rs):.2f} "
                      f"({min(rs):.2f}-{max(rs):.2f})", flush=True)


def skewed_lengths(B: int, T: int, long: int) -> torch.Tensor:
    """``long`` sequences of length T, the rest of length 5: where packing saves the most."""
    lens = torch.full((B,), 5, dtype=torch.long)
    lens[:long] = T
    return lens


def main_pack_vs_dense(args) -> None:
    from seqkit import lstm as lstm_mod

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {args.clock} clock; torch backend "
          f"with ragged lengths, forward + backward, packed time / dense time, median (min-max) of {args.runs} pairs")
    gen = torch.Generator().manual_seed(0)
    cases = []
    for size in args.sizes:
        c = SIZES[size]
        cases.append((size, "lognormal", make_lengths("ragged", c["B"], c["T"], gen)))
        cases.append((size, "1-long-rest-5", skewed_lengths(c["B"], c["T"], 1)))
        cases.append((size, "quarter-long", skewed_lengths(c["B"], c["T"], c["B"] // 4)))
    for size, name, lens in cases:
        c = SIZES[size]
        B, T, H = c["B"], c["T"], c["H"]
        torch.manual_seed(0)
        model = LSTMStack(H, H)
        x = torch.randn(B, T, H, requires_grad=True)
        grad = torch.randn(B, T, H)
        picks = "packed" if model._pack(lens, int(lens.max())) else "dense"

        def run(pack: bool) -> float:
            lstm_mod._FORCE["torch"] = pack
            try:
                model.zero_grad(set_to_none=True)
                x.grad = None
                t0 = clock()
                out, _ = model(x, lens)
                out.backward(grad)
                return clock() - t0
            finally:
                lstm_mod._FORCE.pop("torch", None)

        rs = []
        for r in range(args.warmup + args.runs):
            if r % 2:
                td, tp = run(False), run(True)
            else:
                tp, td = run(True), run(False)
            if r >= args.warmup:
                rs.append(tp / td)
        print(f"pack/dense B{B}-T{T}-H{H} {name:<14} {statistics.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f}) "
              f"picks {picks}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per implementation (median taken; >= 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (TorchScript compiles on the first)")
    parser.add_argument("--configs", default="abc", help="which configurations to run, e.g. 'ac' (default: abc)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: this process's CPU time, steadier on a busy "
                             "machine, meaningful with --threads 1 on CPU only")
    parser.add_argument("--lengths", action="store_true",
                        help="time the stack with lengths (equal, ragged) against padded nn.LSTM (module docstring)")
    parser.add_argument("--sizes", default="sml", help="with --lengths: which sizes, of s, m, l (default: sml)")
    parser.add_argument("--impls", default="",
                        help=f"with --lengths: comma-separated, of {','.join(LENGTH_IMPLS)} (default: all)")
    parser.add_argument("--pack-vs-dense", action="store_true",
                        help="time the torch backend packed against dense with ragged lengths (module docstring)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pack_vs_dense:
        return main_pack_vs_dense(args)
    if args.lengths:
        if args.device != "cpu":
            parser.error("--lengths: CPU only")
        return main_lengths(args)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    device = torch.device(args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; median of {args.runs} runs (after {args.warmup} warm-up), "
          f"forward + backward, {args.clock} clock")
    print(f"{'config':<8}{'implementation':<16}{'median ms':>11}{'min ms':>10}{'max ms':>10}{'ratio':>8}")
    ratios = {}
    t_start = time.perf_counter()
    for key in args.configs:
        if key not in CONFIGS:
            parser.error(f"unknown configuration {key!r}; valid: {', '.join(CONFIGS)}")
        times = bench(key, args.runs, args.warmup, device, clock)
        base = statistics.median(times["nn.LSTM"])
        ratios[key] = {}
        for name in IMPLS:
            med = statistics.median(times[name])
            ratios[key][name] = med / base
            print(f"{key:<8}{name:<16}{med * 1e3:>11.1f}{min(times[name]) * 1e3:>10.1f}"
                  f"{max(times[name]) * 1e3:>10.1f}{med / base:>8.2f}")
        c = CONFIGS[key]
        print(f"{'':<8}(B={c['B']}, T={c['T']}, I={c['I']}, H={c['H']}, layers={c['L']})", flush=True)
    print(f"total {time.perf_counter() - t_start:.0f} s")
    for key, r in ratios.items():
        print(f"ratio {key} plain={r['plain']:.2f} peephole={r['peephole']:.2f} cifg={r['cifg']:.2f}")


if __name__ == "__main__":
    main()
