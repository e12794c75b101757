"""Reading a user's images and caption files.

Images are read with Pillow and converted to 8-bit RGB whatever their mode: greyscale is
repeated over three channels, transparency (RGBA, LA, palette with a transparent colour) is
composited on white, 16-bit and float images are scaled to 0-255, CMYK and the rest go through
Pillow's own conversion. Caption files are TSV / CSV (``image``, ``caption`` per row; several rows
may name the same image) or COCO-style JSON (``images`` with ``id`` and ``file_name``,
``annotations`` with ``image_id`` and ``caption``).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

from seqkit import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_HEADER_IMAGE = {"image", "images", "file", "file_name", "filename", "path", "image_path", "img"}


def to_rgb(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit RGB (see the module docstring for how each mode is converted)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    return img.convert("RGB")


def image_to_tensor(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) uint8 tensor of ``img`` converted to RGB and resized to ``size`` = (H, W)."""
    H, W = size
    img = to_rgb(img)
    if img.size != (W, H):
        img = img.resize((W, H), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8).copy()  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def load_image(path: str, size: tuple[int, int]) -> torch.Tensor:
    """Read, convert and resize one image; raise DataError naming it when it cannot be read."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)  # phone photos: honour the orientation tag
            img.load()
            return image_to_tensor(img, size)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


@dataclass
class CaptionRow:
    image: str
    """The image's path as written in the file (relative to the image folder)."""
    caption: str
    where: str
    """Where the row is, for messages: ``captions.tsv:12`` or ``captions.json annotations[3]``."""


def read_captions(path: str) -> list[CaptionRow]:
    """Every (image, caption) row of a .tsv / .csv / .json captions file, in file order."""
    if not os.path.isfile(path):
        raise DataError(f"captions file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        return _read_coco(path)
    if ext not in (".tsv", ".csv", ".txt"):
        raise DataError(f"{path}: unknown captions format {ext!r}; use .tsv, .csv (image, caption) or .json (COCO style)")
    delimiter = "," if ext == ".csv" else "\t"
    rows: list[CaptionRow] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for lineno, fields in enumerate(csv.reader(fh, delimiter=delimiter), 1):
                if not fields or not any(f.strip() for f in fields):
                    continue
                if lineno == 1 and fields[0].strip().lower() in _HEADER_IMAGE:
                    continue  # header row
                if len(fields) < 2:
                    name = "tab" if delimiter == "\t" else "comma"
                    raise DataError(f"{path}:{lineno}: expected 'image{delimiter}caption', found no {name}")
                caption = delimiter.join(fields[1:]) if delimiter == "\t" else fields[1]
                if delimiter == "," and len(fields) > 2:
                    raise DataError(f"{path}:{lineno}: expected 2 columns (image, caption), found {len(fields)}; quote captions that contain commas")
                rows.append(CaptionRow(fields[0].strip(), caption.strip(), f"{path}:{lineno}"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return rows


def _read_coco(path: str) -> list[CaptionRow]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path}: expected COCO-style JSON with 'images' and 'annotations' lists")
    files = {}
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DataError(f"{path} images[{k}]: needs 'id' and 'file_name'")
        files[im["id"]] = str(im["file_name"])
    rows = []
    for k, ann in enumerate(data["annotations"]):
        where = f"{path} annotations[{k}]"
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise DataError(f"{where}: needs 'image_id' and 'caption'")
        if ann["image_id"] not in files:
            raise DataError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        rows.append(CaptionRow(files[ann["image_id"]], str(ann.get("caption") or "").strip(), where))
    return rows


def list_images(path: str) -> list[str]:
    """Image paths to caption: every image in a folder (sorted), or the paths listed one per
    line in a text file (relative paths are taken from the list's folder)."""
    if os.path.isdir(path):
        found = sorted(
            os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
        )
        if not found:
            raise DataError(f"data.init_args.predict_images: no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path}")
        return found
    if not os.path.isfile(path):
        raise DataError(f"data.init_args.predict_images: not found: {path}")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return [path]
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as fh:
        names = [line.strip() for line in fh if line.strip()]
    if not names:
        raise DataError(f"data.init_args.predict_images: {path} lists no images")
    return [n if os.path.isabs(n) else os.path.join(base, n) for n in names]
