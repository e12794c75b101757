"""The embedded default data: generated "swipe" clips, seeded, nothing shipped or downloaded.

Shapes (square, disc, cross) enter a noisy grayscale frame from one edge, move across it, may
pause or turn, and leave; then the frame stays empty for a while and the next one comes. Each
frame is labelled with what the object is doing *between the previous frame and this one*:

    none   no object in view          still  the object did not move
    left / right / up / down          the direction it moved

so, as in gesture recognition, a single frame cannot tell the label (a square in the middle of
the frame may be moving any way, or not at all): the model has to compare frames over time.
Labels depend only on the past, so a unidirectional (streaming) model can learn them too.
"""

from __future__ import annotations

import numpy as np

LABELS = ["none", "still", "left", "right", "up", "down"]
_MOVES = {"still": (0, 0), "left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
_ENTER = {"right": "left", "left": "right", "down": "top", "up": "bottom"}  # direction -> edge it enters from


def _shape_mask(kind: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    if kind == 0:  # square
        return np.ones((size, size), dtype=bool)
    if kind == 1:  # disc
        return (yy - c) ** 2 + (xx - c) ** 2 <= (size / 2) ** 2
    w = max(1, size // 4)  # cross
    return (np.abs(yy - c) <= w) | (np.abs(xx - c) <= w)


class _Mover:
    """One object on its way through the frame."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        s = int(rng.integers(size // 5, size // 3 + 1))
        self.mask = _shape_mask(int(rng.integers(0, 3)), s)
        self.value = float(rng.uniform(0.55, 1.0))
        self.state = str(rng.choice(["left", "right", "up", "down"]))
        self.speed = int(rng.integers(2, 4))  # pixels per frame
        along = int(rng.integers(0, size - s + 1))
        self.y, self.x = {"left": (along, -s), "right": (along, size), "top": (-s, along), "bottom": (size, along)}[_ENTER[self.state]]
        self.resume, self.pause = self.state, 0

    def step(self, rng: np.random.Generator, size: int) -> None:
        """Maybe pause or turn (only when fully in view), then move one frame."""
        s = self.mask.shape[0]
        if self.pause > 0:
            self.pause -= 1
            if self.pause == 0:
                self.state = self.resume
        elif 0 <= self.y <= size - s and 0 <= self.x <= size - s and rng.random() < 0.06:
            if rng.random() < 0.5:
                self.resume, self.state, self.pause = self.state, "still", int(rng.integers(3, 7))
            else:
                self.state = str(rng.choice([d for d in ("left", "right", "up", "down") if d != self.state]))
        dy, dx = _MOVES[self.state]
        self.y, self.x = self.y + dy * self.speed, self.x + dx * self.speed


def generate_clip(rng: np.random.Generator, num_frames: int, size: int = 32, noise: float = 0.08) -> tuple[np.ndarray, list[str]]:
    """One clip: (T, 1, H, W) uint8 frames and one label per frame."""
    T, H, W = num_frames, size, size
    frames = np.zeros((T, H, W), dtype=np.float32)
    labels: list[str] = []
    obj: _Mover | None = None
    wait = int(rng.integers(0, 6))  # empty frames before the next object
    for t in range(T):
        if obj is None and wait > 0:
            wait -= 1
            labels.append("none")
            continue
        if obj is None:
            obj = _Mover(rng, size)
        obj.step(rng, size)
        s = obj.mask.shape[0]
        y0, y1, x0, x1 = max(obj.y, 0), min(obj.y + s, H), max(obj.x, 0), min(obj.x + s, W)
        if y0 >= y1 or x0 >= x1:  # left the frame
            obj, wait = None, int(rng.integers(1, 8))
            labels.append("none")
            continue
        frames[t, y0:y1, x0:x1][obj.mask[y0 - obj.y : y1 - obj.y, x0 - obj.x : x1 - obj.x]] = obj.value
        labels.append(obj.state)
    frames += rng.normal(0.0, noise, size=frames.shape).astype(np.float32)
    video = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    return video[:, None], labels  # (T, 1, H, W)


def generate_clips(n: int, min_frames: int, max_frames: int, size: int, seed: int) -> list[tuple[str, np.ndarray, list[str]]]:
    """``n`` clips as ``(name, (T, 1, H, W) uint8 frames, labels)``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        T = int(rng.integers(min_frames, max_frames + 1))
        frames, labels = generate_clip(rng, T, size)
        out.append((f"clip{k:05d}", frames, labels))
    return out
