"""One training epoch on skewed lengths: seqkit as it runs (LengthBucketSampler batches, LSTMStack
with lengths) against raw random batches padded to their longest sequence through nn.LSTM.

    python benchmarks/bucketing.py --threads 1 --clock cpu

Data: ``--n`` sequences with lognormal lengths clipped to [5, 400] (most short, a few long, as in
text). Each epoch is forward, cross-entropy over the final state through a linear head, backward
and an Adam step per batch. seqkit: ``seqkit.data.LengthBucketSampler(lengths, batch_size,
shuffle=True)`` picks the batches, each padded to its own longest and run with lengths; raw:
random batches of the same size, padded to their longest, through nn.LSTM without lengths, h
taken at each sequence's last step. Epochs alternate (the order flips every pair); the line gives
the median (min-max) of the per-pair speed-ups raw time / seqkit time, and, as the ceiling of what
bucketing alone can give, the same for raw nn.LSTM on the bucketed batches:

    bucketing speedup <median> (<min>-<max>)
    bucketing alone (raw nn.LSTM on bucketed batches) <median> (<min>-<max>)
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
from seqkit.data import LengthBucketSampler  # noqa: E402
from fit_step import RawModel, SeqkitModel  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="sequences in the epoch (default: 2000)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=3, help="timed pairs of epochs (default: 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    gen = torch.Generator().manual_seed(0)
    N, I, H, B, C = args.n, args.input, args.hidden, args.batch, 10
    lengths = torch.exp(torch.log(torch.tensor(20.0)) + 1.0 * torch.randn(N, generator=gen)).round().long()
    lengths = lengths.clamp(5, args.max_len)
    data = [torch.randn(int(n), I, generator=gen) for n in lengths]
    labels = torch.randint(0, C, (N,), generator=gen)
    torch.manual_seed(0)
    ours, raw = SeqkitModel(I, H, C), RawModel(I, H, C)
    raw.load_state_dict({k.replace("stack.", ""): v for k, v in ours.state_dict().items()})
    opt_s, opt_r = torch.optim.Adam(ours.parameters(), 1e-3), torch.optim.Adam(raw.parameters(), 1e-3)

    def batch(idx):
        x = nn.utils.rnn.pad_sequence([data[i] for i in idx], batch_first=True)  # (B, T_max, I)
        return x, labels[idx], lengths[idx]

    def epoch(model, opt, batches):
        t0 = clock()
        for idx in batches:
            x, y, lens = batch(idx)
            loss = nn.functional.cross_entropy(model(x, lens), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return clock() - t0

    sampler = LengthBucketSampler(lengths.tolist(), B, shuffle=True)
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads, {args.clock} clock; {N} sequences, "
          f"lengths 5..{args.max_len} (median {int(lengths.median())}, mean {float(lengths.float().mean()):.0f}), "
          f"B={B} I={I} H={H}; median (min-max) of {args.pairs} pairs of epochs, raw time / seqkit time")
    speedups, ceiling = [], []
    for r in range(args.pairs):
        sampler.set_epoch(r)
        bucketed = [list(b) for b in sampler]
        perm = torch.randperm(N, generator=gen).tolist()
        random = [perm[i : i + B] for i in range(0, N, B)]
        if r % 2:
            tr, ts = epoch(raw, opt_r, random), epoch(ours, opt_s, bucketed)
        else:
            ts, tr = epoch(ours, opt_s, bucketed), epoch(raw, opt_r, random)
        tb = epoch(raw, opt_r, bucketed)
        speedups.append(tr / ts)
        ceiling.append(tr / tb)
        print(f"  pair {r}: seqkit {ts:.2f} s, raw {tr:.2f} s, raw on bucketed batches {tb:.2f} s", flush=True)
    print(f"bucketing speedup {statistics.median(speedups):.2f} ({min(speedups):.2f}-{max(speedups):.2f})")
    print(f"bucketing alone (raw nn.LSTM on bucketed batches) {statistics.median(ceiling):.2f} "
          f"({min(ceiling):.2f}-{max(ceiling):.2f})")


if __name__ == "__main__":
    main()
