"""One training step of seqkit's LSTMStack with lengths against a raw PyTorch loop.

    python benchmarks/fit_step.py --threads 1 --clock cpu

The step, the same on both sides: forward over a padded batch (B, T) of random lengths (lognormal,
clipped to [5, T]), cross-entropy over the final hidden state through a linear head, backward,
Adam step, zero_grad. seqkit: ``LSTMStack(lengths=...)`` and ``seqkit.lstm.final_hidden``; raw:
``torch.nn.LSTM`` over the padded batch without lengths, taking h at each sequence's last step
(what a user writes by hand). Both start from the same weights and see the same batches. Steps
alternate in pairs (the order flips every pair); each line gives the median (min-max) of the
per-pair ratios seqkit / raw:

    fit_step H=<H> <median> (<min>-<max>)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from seqkit.lstm import LSTMStack, final_hidden  # noqa: E402


def lognormal_lengths(B: int, T: int, gen: torch.Generator) -> torch.Tensor:
    z = torch.randn(B, generator=gen)
    return (torch.exp(torch.log(torch.tensor(T / 2.0)) + 0.6 * z)).round().long().clamp(5, T)


class SeqkitModel(nn.Module):
    def __init__(self, I: int, H: int, C: int) -> None:
        super().__init__()
        self.stack = LSTMStack(I, H)
        self.head = nn.Linear(H, C)

    def forward(self, x, lengths):
        _, state = self.stack(x, lengths)
        return self.head(final_hidden(state, 1, 1))  # (B, C)


class RawModel(nn.Module):
    def __init__(self, I: int, H: int, C: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(I, H, batch_first=True)
        self.head = nn.Linear(H, C)

    def forward(self, x, lengths):
        out, _ = self.lstm(x)  # (B, T, H) over every padded step
        last = out[torch.arange(x.shape[0]), lengths - 1]  # (B, H): h at each own last step
        return self.head(last)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="64,256,512", help="hidden sizes (default: 64,256,512)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50, help="time steps T (default: 50)")
    parser.add_argument("--pairs", type=int, default=9, help="timed pairs per size (default: 9)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    B, T, C = args.batch, args.steps, 10
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {args.clock} clock; B={B} T={T}, "
          f"ragged lengths; median (min-max) of {args.pairs} interleaved pairs, seqkit / raw")
    for H in (int(h) for h in args.hidden.split(",")):
        torch.manual_seed(0)
        I = H
        ours, raw = SeqkitModel(I, H, C), RawModel(I, H, C)
        raw.load_state_dict({k.replace("stack.", ""): v for k, v in ours.state_dict().items()})
        opts = {id(ours): torch.optim.Adam(ours.parameters(), 1e-3), id(raw): torch.optim.Adam(raw.parameters(), 1e-3)}
        gen = torch.Generator().manual_seed(0)

        def step(model, x, y, lengths):
            opt = opts[id(model)]
            t0 = clock()
            loss = nn.functional.cross_entropy(model(x, lengths), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return clock() - t0

        ratios = []
        for r in range(args.warmup + args.pairs):
            x = torch.randn(B, T, I, generator=gen)
            y = torch.randint(0, C, (B,), generator=gen)
            lengths = lognormal_lengths(B, T, gen)
            if r % 2:
                tr, ts = step(raw, x, y, lengths), step(ours, x, y, lengths)
            else:
                ts, tr = step(ours, x, y, lengths), step(raw, x, y, lengths)
            if r >= args.warmup:
                ratios.append(ts / tr)
        print(f"fit_step H={H} {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)


if __name__ == "__main__":
    main()
