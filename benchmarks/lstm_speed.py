"""Speed of seqkit's LSTM stack against raw torch.nn.LSTM: forward plus backward, in one process.

    python benchmarks/lstm_speed.py                  # CPU, the three configurations below
    python benchmarks/lstm_speed.py --device cuda    # the same on a GPU

Times, for each configuration, raw ``torch.nn.LSTM``, seqkit's ``LSTMStack`` on the plain path
(which runs torch.nn.LSTM), and seqkit's own recurrence for the ``peephole`` and ``cifg`` variants.
The four are interleaved run by run (so a machine that slows down mid-way slows all of them), and
each figure is the median of ``--runs`` timed runs after ``--warmup`` untimed ones. The last lines
give each one's median time relative to raw nn.LSTM's in the same run:

    ratio <config> plain=<x> peephole=<x> cifg=<x>

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
    args = parser.parse_args(argv)
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
