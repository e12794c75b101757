"""Timeline picture of per-frame predictions: for each clip a bar of predicted labels over time,
with the true labels under it when they are known (the usual figure of temporal action
segmentation papers, e.g. MS-TCN's Fig. 4). Drawn with matplotlib's Agg backend, no display."""

from __future__ import annotations

from seqkit import atomic_write


def draw_timeline(path: str, records: list[dict], names: list[str], total: int | None = None) -> None:
    """Write a PNG of the clips in ``records`` (each with ``frames``, ``labels``, its clip's name in
    ``input`` and optionally ``true``) to ``path``; ``total`` is the number of clips predicted in all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10").colors
    cmap = ListedColormap([colours[k % len(colours)] for k in range(len(names))])
    index = {name: k for k, name in enumerate(names)}
    rows = []  # (y label, label ids, frame numbers)
    for r in records:
        clip = r.get("input", r["index"])
        if "true" in r:
            correct = sum(p == t for p, t in zip(r["labels"], r["true"])) / max(1, len(r["labels"]))
            rows.append((f"{clip} predicted ({correct:.0%})", r["labels"], r["frames"]))
            rows.append((f"{clip} true", r["true"], r["frames"]))
        else:
            rows.append((f"{clip} predicted", r["labels"], r["frames"]))
    longest = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 0.45 * len(rows) + 1.4), squeeze=False)
    for ax, (title, labels, frames) in zip(axes[:, 0], rows):
        ids = np.array([[index[label] for label in labels]])
        step = frames[1] - frames[0] if len(frames) > 1 else 1
        ax.imshow(ids, aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, interpolation="nearest",
                  extent=(frames[0] - step / 2, frames[-1] + step / 2, 0, 1))
        ax.set_xlim(-0.5, (longest - 0.5) * step)
        ax.set_yticks([])
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        if ax is not axes[-1, 0]:
            ax.set_xticklabels([])
    axes[-1, 0].set_xlabel("frame")
    shown = f"{len(records)} of {total} clips" if total and total > len(records) else f"{len(records)} clips"
    fig.suptitle(f"Per-frame labels, predicted and true ({shown})", fontsize=10)
    fig.legend(handles=[Patch(color=cmap(k), label=name) for k, name in enumerate(names)], loc="lower center",
               ncol=min(len(names), 8), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if len(rows) > 4 else 0.12, 1, 0.97))
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
