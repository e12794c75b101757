"""Per-frame labelling of real handwritten digits moving through clips: seqkit against plain PyTorch.

    python benchmarks/video_real.py                           # 3 seeds, 300 CPU-s a run, 1 thread
    python benchmarks/video_real.py --budget 300 --seeds 2 --jobs 2   # the reported run (2 runs at once)
    python benchmarks/video_real.py --budget 30 --seeds 1     # a smoke test, end to end
    python benchmarks/video_real.py --systems seqkit --budget 150 --seeds 1 \\
        --override=--model.head.init_args.smoothing=0.15      # a validation-only trial of a setting

Data. The digits are real: scikit-learn's copy of the UCI handwritten digits
(``sklearn.datasets.load_digits``: 1,797 scanned 8x8 images, values 0-16; ``pip install
scikit-learn``), upsampled bilinearly to 16x16. The *images* are split 60/20/20 into train /
validation / test with a fixed seed before any clip is made, so every test clip shows digit
images that no model saw in training. Each clip is 16-40 frames of a 32x32 grayscale canvas: a
digit enters from a random edge and wanders (bouncing off the walls); then, drawn with equal
odds, it stays to the end, leaves through an edge, or leaves and is replaced by a digit of
another class, which enters from an edge and wanders. Every frame is labelled with the visible
digit's class ("0".."9"), or "background" when less than half of a digit's ink is inside the
canvas (so an entry or an exit changes the label halfway through). Gaussian pixel noise (sd 8 of
255) is drawn anew every frame. 600 / 150 / 150 clips, written once under ``--cache`` (default
``~/.cache/seqkit-bench/video_real``, never in the repository) in seqkit's layout:
``<split>/clip_0001.npy`` (uint8, (T, 1, 32, 32)) beside ``<split>/clip_0001.csv`` (a header
``label``, then one label per frame).

Systems, each given ``--budget`` CPU-seconds of training per seed (``--seeds`` seeds, each its
own initial weights and batch order; the data is the same for all):

- seqkit: ``seqkit fit --config benchmarks/configs/video_real.yaml`` (FrameCNN with BatchNorm +
  bidirectional LSTMStack + PerFrameHead with MS-TCN's smoothing loss; its settings were chosen
  on the validation split only, the trials are in its header) with a
  ``seqkit.TimeBudget`` on CPU time and a ``ModelCheckpoint`` on ``val_acc``, then ``seqkit
  test`` on that checkpoint; the test metrics are read from the test run's CSV log. Its CPU time
  is that of both processes, start-up included.
- cnn: a per-frame CNN in plain PyTorch, no recurrence (the same conv stack as seqkit's, with
  BatchNorm, a linear layer per frame on top).
- cnn+bilstm: the same CNN, then a bidirectional ``torch.nn.LSTM`` over the frames (packed
  sequences), the usual CNN + LSTM recipe.

The peers run in this process under ``torch.set_num_threads(--threads)``, timed with
``time.process_time`` (evaluation on the validation split included, as seqkit's budget includes
it), Adam with the seqkit config's learning rate, gradient-norm clipping at 1, batches of 16
whole clips, and random translations of whole clips (up to ``--peer-shift`` = 3 pixels each
way, zero fill; no flips: digits are not mirror-symmetric); each keeps the weights of the epoch
with the best validation frame accuracy. All three are scored by the same code: frame accuracy
and macro-F1 of torchmetrics, and ``seqkit_video.segments``' edit score and F1@{10,25,50} with
"background" forming no segment, as PerFrameHead's ``background: [background]`` does.

``--jobs N`` runs N of the (system, seed) runs at once, each in its own process: every budget
is that process's own CPU time, so the runs stay comparable on a machine with N free cores.

Output: a line per system and seed, then a table of mean ± std over the seeds, the ratios
seqkit / peer of mean test accuracy and edit score, and the budget, threads, machine and load.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from seqkit_runs import fit_and_test  # noqa: E402
CLIPS = {"train": 600, "val": 150, "test": 150}
IMAGE_SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}
CANVAS, DIGIT = 32, 16
MIN_FRAMES, MAX_FRAMES = 16, 40
NOISE = 8.0  # pixel noise, sd on the 0-255 scale
VISIBLE = 0.5  # a digit is labelled when at least this share of its ink is inside the canvas
BACKGROUND = "background"
METRICS = ("acc", "f1", "edit", "f1@10", "f1@25", "f1@50")
VERSION = 1  # of the generator: a cache made by another version is rebuilt


def _fail(message: str) -> None:
    print(f"video_real: {message}", file=sys.stderr)
    sys.exit(2)


# -- the clips -----------------------------------------------------------------------------------
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as float images (N, 16, 16) on 0-255, and their classes."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        _fail("the digits come from scikit-learn: pip install scikit-learn")
    import torch
    import torch.nn.functional as F

    data = load_digits()
    small = torch.tensor(data.images, dtype=torch.float32)[:, None] * (255.0 / 16.0)  # (N, 1, 8, 8)
    big = F.interpolate(small, size=(DIGIT, DIGIT), mode="bilinear", align_corners=False)
    return big[:, 0].clamp(0, 255).numpy(), data.target.astype(int)


def _visible(img: np.ndarray, x: int, y: int) -> float:
    """Share of the digit's ink inside the canvas when its top-left corner is at (x, y)."""
    x0, x1 = max(0, -x), min(DIGIT, CANVAS - x)
    y0, y1 = max(0, -y), min(DIGIT, CANVAS - y)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(img[y0:y1, x0:x1].sum() / max(img.sum(), 1e-6))


def _paste(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    x0, x1 = max(0, -x), min(DIGIT, CANVAS - x)
    y0, y1 = max(0, -y), min(DIGIT, CANVAS - y)
    if x1 > x0 and y1 > y0:
        region = canvas[y + y0 : y + y1, x + x0 : x + x1]
        np.maximum(region, img[y0:y1, x0:x1], out=region)


class _Mover:
    """One digit's path: entering from an edge, wandering inside, and (when told) leaving."""

    LIMIT = CANVAS - DIGIT  # top-left corners in [0, LIMIT] keep the digit wholly inside

    def __init__(self, rng: np.random.Generator) -> None:
        edge = rng.integers(4)  # 0 left, 1 right, 2 top, 3 bottom
        along = rng.uniform(0, self.LIMIT)
        speed = rng.uniform(1.5, 3.0)
        drift = rng.uniform(-0.8, 0.8)
        out = -DIGIT - rng.uniform(0, 3)  # fully outside, up to 3 px more
        far = CANVAS + rng.uniform(0, 3)
        self.x, self.y, self.vx, self.vy = {
            0: (out, along, speed, drift), 1: (far, along, -speed, drift),
            2: (along, out, drift, speed), 3: (along, far, drift, -speed),
        }[int(edge)]
        self.axis = "x" if edge < 2 else "y"
        self.state = "enter"
        self.rng = rng

    def leave(self) -> None:
        if self.state in ("enter", "wander"):
            edge = self.rng.integers(4)
            speed = self.rng.uniform(2.0, 3.5)
            self.vx, self.vy = {0: (-speed, self.vy * 0.3), 1: (speed, self.vy * 0.3),
                                2: (self.vx * 0.3, -speed), 3: (self.vx * 0.3, speed)}[int(edge)]
            self.state = "exit"

    @property
    def gone(self) -> bool:
        return self.state == "exit" and (self.x <= -DIGIT or self.x >= CANVAS or self.y <= -DIGIT or self.y >= CANVAS)

    def step(self) -> None:
        self.x += self.vx
        self.y += self.vy
        if self.state == "enter" and 0 <= self.x <= self.LIMIT and 0 <= self.y <= self.LIMIT:
            self.state = "wander"
            speed = self.rng.uniform(0.4, 1.5)
            angle = self.rng.uniform(0, 2 * np.pi)
            self.vx, self.vy = speed * np.cos(angle), speed * np.sin(angle)
        elif self.state == "enter":  # the cross-axis stays inside while the digit comes in
            if self.axis == "x" and not 0 <= self.y <= self.LIMIT:
                self.vy, self.y = -self.vy, min(max(self.y, 0), self.LIMIT)
            if self.axis == "y" and not 0 <= self.x <= self.LIMIT:
                self.vx, self.x = -self.vx, min(max(self.x, 0), self.LIMIT)
        elif self.state == "wander":
            if not 0 <= self.x <= self.LIMIT:
                self.vx = -self.vx
                self.x = min(max(self.x, 0), self.LIMIT)
            if not 0 <= self.y <= self.LIMIT:
                self.vy = -self.vy
                self.y = min(max(self.y, 0), self.LIMIT)
            if self.rng.random() < 0.1:  # now and then a new heading
                speed = self.rng.uniform(0.4, 1.5)
                angle = self.rng.uniform(0, 2 * np.pi)
                self.vx, self.vy = speed * np.cos(angle), speed * np.sin(angle)


def make_clip(rng: np.random.Generator, images: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One clip (T, 1, CANVAS, CANVAS) uint8 and its per-frame labels."""
    T = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    scenario = ("stay", "leave", "replace")[int(rng.integers(3))]
    first = int(rng.integers(len(images)))
    others = np.flatnonzero(classes != classes[first])
    second = int(rng.choice(others))
    start = int(rng.integers(0, 4))  # empty frames before the first digit moves in
    share = {"stay": 2.0, "leave": rng.uniform(0.45, 0.75), "replace": rng.uniform(0.2, 0.4)}[scenario]
    leave_at = start + int(share * T)  # the frame the first digit turns to leave
    current, mover, done = first, None, False
    frames, labels = np.zeros((T, 1, CANVAS, CANVAS), dtype=np.uint8), []
    for t in range(T):
        if mover is None and not done and t >= start:
            mover = _Mover(rng)
        if mover is not None:
            if t == leave_at:
                mover.leave()
            mover.step()
            if mover.gone:
                mover = None
                if scenario == "replace" and current == first:
                    current, start = second, t + int(rng.integers(0, 3))
                    leave_at = T + 1
                else:
                    done = True
        canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
        label = BACKGROUND
        if mover is not None:
            x, y = int(round(mover.x)), int(round(mover.y))
            _paste(canvas, images[current], x, y)
            if _visible(images[current], x, y) >= VISIBLE:
                label = str(int(classes[current]))
        canvas += rng.normal(0.0, NOISE, canvas.shape).astype(np.float32)
        frames[t, 0] = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
        labels.append(label)
    return frames, labels


def build_clips(cache: str) -> str:
    """Write the train/val/test clips under ``cache`` (once); return the folder."""
    root = os.path.expanduser(cache)
    stamp = os.path.join(root, "done.json")
    want = {"version": VERSION, "clips": CLIPS, "canvas": CANVAS, "digit": DIGIT, "frames": [MIN_FRAMES, MAX_FRAMES]}
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == want:
                return root
    images, classes = _digits()
    order = np.random.default_rng(0).permutation(len(images))
    cut = np.cumsum([round(IMAGE_SPLIT[s] * len(images)) for s in ("train", "val")])
    pools = dict(zip(("train", "val", "test"), np.split(order, cut)))
    for k, split in enumerate(CLIPS):
        folder = os.path.join(root, split)
        os.makedirs(folder, exist_ok=True)
        for old in glob.glob(os.path.join(folder, "clip_*")):
            os.remove(old)
        rng = np.random.default_rng(1000 + k)
        pool = pools[split]
        for n in range(1, CLIPS[split] + 1):
            frames, labels = make_clip(rng, images[pool], classes[pool])
            np.save(os.path.join(folder, f"clip_{n:04d}.npy"), frames)
            with open(os.path.join(folder, f"clip_{n:04d}.csv"), "w", newline="") as f:
                f.write("label\n" + "".join(f"{label}\n" for label in labels))
    with open(stamp, "w") as f:
        json.dump(want, f)
    return root


def load_split(root: str, split: str) -> list[tuple[np.ndarray, list[str]]]:
    out = []
    for path in sorted(glob.glob(os.path.join(root, split, "clip_*.npy"))):
        with open(path[:-4] + ".csv") as f:
            labels = [row[0] for row in csv.reader(f)][1:]
        out.append((np.load(path), labels))
    return out


# -- scoring (the same for every system) ------------------------------------------------------------
class Scorer:
    """PerFrameHead's metrics: torchmetrics frame accuracy and macro-F1, and segment metrics of
    ``seqkit_video.segments`` with the background label forming no segment."""

    def __init__(self, names: list[str]) -> None:
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        from seqkit_video.segments import EditScore, SegmentF1

        n, bg = len(names), [names.index(BACKGROUND)]
        self.metrics = {"acc": MulticlassAccuracy(n, average="micro"), "f1": MulticlassF1Score(n, average="macro"),
                        "edit": EditScore(bg), **{f"f1@{k}": SegmentF1(k / 100, bg) for k in (10, 25, 50)}}

    def update(self, pred, true, lengths) -> None:
        """``pred``, ``true``: (B, T) class ids; ``lengths``: (B,) frames of each clip."""
        from seqkit import length_mask

        mask = length_mask(lengths, pred.shape[1])
        for key, metric in self.metrics.items():
            if key in ("acc", "f1"):
                metric.update(pred[mask], true[mask])
            else:
                metric.update(pred, true, lengths)

    def compute(self) -> dict[str, float]:
        return {k: float(m.compute()) for k, m in self.metrics.items()}


# -- the peers ------------------------------------------------------------------------------------
PEER = {"channels": 8, "depth": 3, "output_size": 64, "hidden_size": 64, "lr": 0.003, "batch_size": 16}


def _peer_model(kind: str, classes: int):
    import torch
    from torch import nn

    class Peer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, c_in = [], 1
            for k in range(PEER["depth"]):
                c_out = PEER["channels"] * 2**k
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
                c_in = c_out
            side = CANVAS >> PEER["depth"]
            layers += [nn.Flatten(), nn.Linear(c_in * side * side, PEER["output_size"]), nn.ReLU()]
            self.cnn = nn.Sequential(*layers)
            size = PEER["output_size"]
            if kind == "cnn+bilstm":
                self.lstm = nn.LSTM(size, PEER["hidden_size"], batch_first=True, bidirectional=True)
                size = 2 * PEER["hidden_size"]
            else:
                self.lstm = None
            self.out = nn.Linear(size, classes)

        def forward(self, x, lengths):  # x (B, T, 1, H, W), lengths (B,) -> (B, T, classes)
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

            B, T = x.shape[:2]
            mask = torch.arange(T)[None] < lengths[:, None]
            feats = x.new_zeros(B, T, PEER["output_size"])
            feats[mask] = self.cnn(x[mask])  # real frames only: padding never reaches BatchNorm
            if self.lstm is not None:
                packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
                feats, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=T)
            return self.out(feats)

    return Peer()


def _batch(clips, index, names, mean, std, shift: int, rng):
    """Padded (B, T, 1, H, W) normalised frames, (B, T) targets (-100 on padding), (B,) lengths;
    with ``shift``, each clip translated by up to ``shift`` pixels each way (zero fill)."""
    import torch

    lookup = {name: k for k, name in enumerate(names)}
    T = max(clips[i][0].shape[0] for i in index)
    x = torch.zeros(len(index), T, 1, CANVAS, CANVAS)
    y = torch.full((len(index), T), -100, dtype=torch.long)
    lengths = torch.tensor([clips[i][0].shape[0] for i in index])
    for b, i in enumerate(index):
        frames = torch.from_numpy(clips[i][0]).float() / 255.0
        if shift:
            dx, dy = (int(v) for v in rng.integers(-shift, shift + 1, 2))
            moved = torch.zeros_like(frames)
            moved[..., max(0, dy) : CANVAS + min(0, dy), max(0, dx) : CANVAS + min(0, dx)] = \
                frames[..., max(0, -dy) : CANVAS + min(0, -dy), max(0, -dx) : CANVAS + min(0, -dx)]
            frames = moved
        n = frames.shape[0]
        x[b, :n] = (frames - mean) / std
        y[b, :n] = torch.tensor([lookup[label] for label in clips[i][1]])
    return x, y, lengths


def _evaluate(model, clips, names, mean, std) -> dict[str, float]:
    import torch

    model.eval()
    scorer = Scorer(names)
    with torch.no_grad():
        for s in range(0, len(clips), 50):
            x, y, lengths = _batch(clips, range(s, min(s + 50, len(clips))), names, mean, std, 0, None)
            scorer.update(model(x, lengths).argmax(-1), y, lengths)
    model.train()
    return scorer.compute()


def peer_run(kind: str, data: dict, seed: int, budget: float, threads: int, shift: int) -> tuple[dict, float, float, int]:
    """Test metrics, best validation accuracy, CPU seconds and epochs of one peer and seed."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    start = time.process_time()
    train, val, test = data["train"], data["val"], data["test"]
    names = sorted({label for _, labels in train for label in labels})
    pixels = np.concatenate([c.reshape(-1) for c, _ in train]).astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    model = _peer_model(kind, len(names))
    opt = torch.optim.Adam(model.parameters(), lr=PEER["lr"])
    best, best_acc, epochs, over = None, -1.0, 0, False
    while not over:
        order = rng.permutation(len(train))
        for s in range(0, len(order), PEER["batch_size"]):
            x, y, lengths = _batch(train, order[s : s + PEER["batch_size"]], names, mean, std, shift, rng)
            logits = model(x, lengths)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if time.process_time() - start >= budget:
                over = True
                break
        epochs += 1
        acc = _evaluate(model, val, names, mean, std)["acc"]
        if acc > best_acc:
            best_acc, best = acc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best)
    metrics = _evaluate(model, test, names, mean, std)
    return metrics, best_acc, time.process_time() - start, epochs


# -- seqkit ---------------------------------------------------------------------------------------
def seqkit_run(config: str, overrides: list[str], seed: int, budget: float, work: str,
               threads: int) -> tuple[dict, float, float, int]:
    """Test metrics, best validation accuracy, CPU seconds (fit and test processes) and epochs."""
    fit_csv, test_csv, cpu = fit_and_test(config, overrides, seed, budget, work, threads, "video_real")
    with open(fit_csv) as f:
        rows = list(csv.DictReader(f))
    vals = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    epochs = len(vals)
    edits = [float(r["val_edit"]) for r in rows if r.get("val_acc")]
    if vals:  # for validation-only choices between settings of equal accuracy
        print(f"  seqkit seed {seed}: val edit {edits[vals.index(max(vals))]:.4f} at the best val acc", flush=True)
    with open(test_csv) as f:
        row = next(r for r in csv.DictReader(f) if r.get("test_acc"))
    return {k: float(row[f"test_{k}"]) for k in METRICS}, max(vals) if vals else float("nan"), cpu, epochs


# -- the report -----------------------------------------------------------------------------------
def _mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def _line(system: str, seed: int, metrics: dict, val: float, cpu: float, epochs: int) -> str:
    scores = " ".join(f"{k} {metrics[k]:.4f}" for k in METRICS)
    return f"{system} seed {seed}: test {scores} | val acc {val:.4f}, {epochs} epochs, {cpu:.0f} CPU-s"


SYSTEMS = ("seqkit", "cnn", "cnn+bilstm")


def _one_run(system: str, seed: int, config: str, overrides: list[str], data, args, work: str):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if system == "seqkit":
        return seqkit_run(config, overrides, seed, args.budget, work, args.threads)
    return peer_run(system, data, seed, args.budget, args.threads, args.peer_shift)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per system (default: 3)")
    parser.add_argument("--budget", type=float, default=300.0, help="CPU-seconds of training per run (default: 300)")
    parser.add_argument("--threads", type=int, default=1, help="threads per process (default: 1)")
    parser.add_argument("--cache", default="~/.cache/seqkit-bench/video_real", help="where the clips are written")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--peer-shift", type=int, default=3, help="the peers' largest random translation, pixels (default: 3)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, each in its own process with --threads threads (budgets are per-process CPU time)")
    parser.add_argument("--override", action="append", default=[], metavar="--KEY=VALUE",
                        help="an extra seqkit fit argument (repeatable), for validation-only trials")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    if any(s not in SYSTEMS for s in systems):
        _fail(f"--systems: choose from {', '.join(SYSTEMS)}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    t0 = time.process_time()
    root = build_clips(args.cache)
    data = {split: load_split(root, split) for split in CLIPS}
    counts = {split: sum(len(labels) for _, labels in clips) for split, clips in data.items()}
    bg = sum(label == BACKGROUND for _, labels in data["test"] for label in labels) / counts["test"]
    print(f"clips: {', '.join(f'{s} {len(c)} ({counts[s]} frames)' for s, c in data.items())} in {root} "
          f"(built/read in {time.process_time() - t0:.0f} CPU-s); test frames {bg:.1%} background", flush=True)

    config = os.path.join(HERE, "configs", "video_real.yaml")
    overrides = [f"--data.init_args.data_dir={root}", *args.override]
    results: dict[str, list[tuple[dict, float, float, int]]] = {s: [] for s in systems}
    jobs = [(seed, system) for seed in range(args.seeds) for system in systems]
    with tempfile.TemporaryDirectory(prefix="seqkit-bench-") as work:
        if args.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(args.jobs) as pool:
                futures = {job: pool.submit(_one_run, job[1], job[0], config, overrides, data, args, work) for job in jobs}
                done = {job: f.result() for job, f in futures.items()}
        else:
            done = {job: _one_run(job[1], job[0], config, overrides, data, args, work) for job in jobs}
        for seed, system in jobs:
            results[system].append(done[(seed, system)])
            print(_line(system, seed, *done[(seed, system)]), flush=True)

    print()
    print(f"| system ({args.seeds} seeds, test) | " + " | ".join(METRICS) + " | val acc | CPU-s | epochs |")
    print("|---" * (len(METRICS) + 4) + "|")
    for system, runs in results.items():
        cells = [_mean_std([r[0][k] for r in runs]) for k in METRICS]
        print(f"| {system} | " + " | ".join(cells) + f" | {_mean_std([r[1] for r in runs])} "
              f"| {statistics.mean(r[2] for r in runs):.0f} | {statistics.mean(r[3] for r in runs):.1f} |")
    if "seqkit" in results:
        mine = {k: statistics.mean(r[0][k] for r in results["seqkit"]) for k in ("acc", "edit")}
        for peer in (s for s in systems if s != "seqkit"):
            theirs = {k: statistics.mean(r[0][k] for r in results[peer]) for k in ("acc", "edit")}
            print(f"seqkit / {peer}: accuracy {mine['acc'] / theirs['acc']:.3f}, edit {mine['edit'] / theirs['edit']:.3f}")
    print(f"budget {args.budget:.0f} CPU-s per run, {args.threads} thread(s); machine {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
