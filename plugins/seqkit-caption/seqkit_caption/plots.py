"""Attention pictures: where the decoder looked in the image for each word it wrote (Xu et al.
2015, fig. 2 and 3). Drawn with matplotlib's Agg backend (no display) and written atomically."""

from __future__ import annotations

import math

import numpy as np

from seqkit import atomic_write


def save_attention_png(path: str, image: np.ndarray, words: list[str], attention: np.ndarray, title: str = "", cols: int = 5) -> None:
    """Write one PNG: the image, then one panel per word with its attention map over the image.

    Args:
        path: Output .png file.
        image: (H, W, 3) floats in [0, 1].
        words: The decoded words (including <eos> when the caption ended with it).
        attention: (len(words), H', W') attention weights over the encoder's grid.
        title: Text above the figure (the image's name).
        cols: Panels per row.
    """
    from matplotlib.figure import Figure

    H, W = image.shape[:2]
    panels = 1 + len(words)
    rows = math.ceil(panels / cols)
    pw = 2.2 * W / max(H, W)  # panel size in inches, keeping the image's aspect
    ph = 2.2 * H / max(H, W) + 0.3  # + room for the word above it
    fig = Figure(figsize=(cols * pw, rows * ph + 0.3), dpi=100)
    extent = (0, W, H, 0)
    for k in range(rows * cols):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.set_axis_off()
        if k >= panels:
            continue
        ax.imshow(image, extent=extent)
        if k == 0:
            ax.set_title("input", fontsize=9)
            continue
        a = attention[k - 1]
        # each panel scales its own map: a word's attention is a distribution, compare its shape
        ax.imshow(a / max(float(a.max()), 1e-8), cmap="magma", alpha=0.6, extent=extent, interpolation="bilinear", vmin=0, vmax=1)
        ax.set_title(words[k - 1], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png")
