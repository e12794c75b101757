"""The embedded captioning data: coloured shapes on a canvas, captioned so word order matters.

Every image holds two groups of shapes, one in its left half and one in its right half; a group
is one or two shapes of a single colour and kind. Each image has two reference captions that say
the same thing in opposite orders::

    two red squares left of a blue circle
    a blue circle right of two red squares

so a model has to get the counts, colours and kinds right *and* put each group on the right side
of ``left of`` / ``right of``: a bag of words scores well on BLEU-1 but not on BLEU-4. Everything
is drawn with Pillow from a seed - no download.

Export the data as files, to see the layout your own data should follow::

    python -m seqkit_caption.shapes OUT_DIR [--num 200] [--seed 0]

writes ``OUT_DIR/images/*.png``, ``OUT_DIR/captions.tsv`` and ``OUT_DIR/captions.json`` (COCO style).
"""

from __future__ import annotations

import argparse
import json
import os
import random

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 80, 230), "yellow": (235, 200, 30)}
KINDS = ("square", "circle", "triangle")
COUNTS = {1: "a", 2: "two"}
CANVAS = (32, 64)  # (height, width): two 32x32 halves


def _phrase(count: int, colour: str, kind: str) -> str:
    return f"{COUNTS[count]} {colour} {kind}{'s' if count > 1 else ''}"


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, x: int, y: int, size: int, fill) -> None:
    if kind == "square":
        draw.rectangle([x, y, x + size - 1, y + size - 1], fill=fill)
    elif kind == "circle":
        draw.ellipse([x, y, x + size - 1, y + size - 1], fill=fill)
    else:
        draw.polygon([(x + size / 2, y), (x, y + size - 1), (x + size - 1, y + size - 1)], fill=fill)


def _place(rng: random.Random, count: int, size: int, x0: int, half: int, height: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` non-overlapping shapes inside the half starting at ``x0``."""
    for _ in range(100):
        spots = [(x0 + rng.randint(1, half - size - 1), rng.randint(1, height - size - 1)) for _ in range(count)]
        if count == 1 or all(abs(a[0] - b[0]) > size or abs(a[1] - b[1]) > size for a in spots for b in spots if a is not b):
            return spots
    # crowded: stack them vertically
    return [(x0 + (half - size) // 2, 1 + k * (size + 1)) for k in range(count)]


def draw_example(rng: random.Random) -> tuple[Image.Image, list[str]]:
    """One image and its two reference captions."""
    H, W = CANVAS
    half = W // 2
    background = tuple(rng.randint(225, 255) for _ in range(3))
    img = Image.new("RGB", (W, H), background)
    draw = ImageDraw.Draw(img)
    groups = []
    for side in range(2):
        count = rng.choice(list(COUNTS))
        colour = rng.choice(list(COLOURS))
        kind = rng.choice(KINDS)
        size = rng.randint(11, 14) if count == 1 else rng.randint(9, 12)
        fill = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in COLOURS[colour])
        for x, y in _place(rng, count, size, side * half, half, H):
            _draw_shape(draw, kind, x, y, size, fill)
        groups.append(_phrase(count, colour, kind))
    left, right = groups
    return img, [f"{left} left of {right}", f"{right} right of {left}"]


def generate(n: int, seed: int) -> list[tuple[Image.Image, list[str]]]:
    """``n`` (image, captions) pairs, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [draw_example(rng) for _ in range(n)]


def export(out_dir: str, n: int = 200, seed: int = 0) -> None:
    """Write ``n`` generated examples as files: images/, captions.tsv and captions.json."""
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    images, annotations, rows = [], [], ["image\tcaption"]
    for i, (img, captions) in enumerate(generate(n, seed)):
        name = f"images/{i:05d}.png"
        img.save(os.path.join(out_dir, name))
        images.append({"id": i, "file_name": name})
        for cap in captions:
            annotations.append({"id": len(annotations), "image_id": i, "caption": cap})
            rows.append(f"{name}\t{cap}")
    with open(os.path.join(out_dir, "captions.tsv"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(rows) + "\n")
    with open(os.path.join(out_dir, "captions.json"), "w", encoding="utf-8") as fh:
        json.dump({"images": images, "annotations": annotations}, fh, indent=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seqkit_caption.shapes", description="Export the generated shapes captioning data as files.")
    parser.add_argument("out_dir")
    parser.add_argument("--num", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    export(args.out_dir, args.num, args.seed)
    print(f"wrote {args.num} images and their captions to {args.out_dir}")


if __name__ == "__main__":
    main()
