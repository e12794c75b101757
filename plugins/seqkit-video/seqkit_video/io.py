"""Reading clips and their per-frame labels from disk.

A clip is one of:

- a folder of frame images (``.png``, ``.jpg``, ``.jpeg``, read with Pillow), in the order of
  the numbers in their names (``frame_2.png`` before ``frame_10.png``);
- a ``.npy`` or ``.pt`` array shaped (T, C, H, W) or (T, H, W);
- a video file (``.mp4``, ``.avi``, ...), decoded with PyAV or torchvision when one is installed;
- a ``.npy`` or ``.pt`` array shaped (T, F) or (F, T): precomputed per-frame features (I3D and
  the like), which the data module orients by the label count.

Its labels sit next to it in ``<clip name>.csv`` or ``<clip name>.json``, inside a frame folder
as ``labels.csv`` / ``labels.json`` / ``labels.txt``, or in a separate labels folder (also
``<clip name>.txt``, one label name per line: MS-TCN's ``groundTruth``): one label per frame, or
segments ``(start, end, label)`` with frame numbers counted from 0 and ``end`` exclusive. An
annotation list (:func:`read_clip_list`) names clips and label files explicitly. Every error names
the file at fault.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from seqkit import DataError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
ARRAY_EXTS = (".npy", ".pt")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
LABEL_EXTS = (".csv", ".json")

NO_DECODER = (
    "cannot decode video files: neither PyAV nor torchvision is installed. Install PyAV with "
    "`pip install 'seqkit-video[video]'` (or `pip install av`), or convert the clip to a folder of "
    "PNG/JPEG frames or a .npy array (T, C, H, W)"
)


@dataclass
class ClipSource:
    """Where one clip's frames and labels are on disk."""

    name: str
    path: str
    kind: str  # "frames", "array" or "video"
    labels: str | None = None


def _clip_kind(path: str) -> str | None:
    if os.path.isdir(path):
        return "frames"
    ext = os.path.splitext(path)[1].lower()
    return "array" if ext in ARRAY_EXTS else "video" if ext in VIDEO_EXTS else None


def _inner_labels(folder: str) -> str | None:
    """A frame folder's own ``labels.csv`` / ``labels.json`` / ``labels.txt``."""
    found = [os.path.join(folder, f"labels{ext}") for ext in (*LABEL_EXTS, ".txt")]
    found = [p for p in found if os.path.isfile(p)]
    if len(found) > 1:
        raise DataError(f"{folder}: the frame folder has two label files ({found[0]} and {found[1]}); keep one")
    return found[0] if found else None


def _label_files(folder: str, exts: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(entry)
        if entry.startswith(".") or ext.lower() not in exts or not os.path.isfile(os.path.join(folder, entry)):
            continue
        path = os.path.join(folder, entry)
        if stem in labels:
            raise DataError(f"{path}: clip {stem!r} has two label files ({labels[stem]} and {path}); keep one")
        labels[stem] = path
    return labels


def find_clips(folder: str, need_labels: bool, labels_dir: str | None = None, strict: bool = True) -> list[ClipSource]:
    """The clips of ``folder`` with their label files, sorted by name.

    Labels are ``<clip name>.csv|.json`` next to the clip, a frame folder's own ``labels.*``, or,
    with ``labels_dir``, ``labels_dir/<clip name>.csv|.json|.txt``. Label files that match no clip
    are an error, or with ``strict=False`` (a labels folder shared by several splits) a warning
    with their count."""
    if not os.path.isdir(folder):
        raise DataError(f"clip folder not found: {folder}")
    if labels_dir is not None and not os.path.isdir(labels_dir):
        raise DataError(f"labels folder not found: {labels_dir}")
    clips: dict[str, ClipSource] = {}
    for entry in sorted(os.listdir(folder)):
        if entry.startswith("."):
            continue
        path = os.path.join(folder, entry)
        kind = _clip_kind(path)
        if kind is None:
            continue  # label files, README, notes
        stem = entry if kind == "frames" else os.path.splitext(entry)[0]
        if stem in clips:
            raise DataError(f"{path}: clip {stem!r} is given twice ({clips[stem].path} and {path}); keep one")
        clips[stem] = ClipSource(stem, path, kind)
    if labels_dir is None:
        labels = _label_files(folder, LABEL_EXTS)
        where = folder
    else:
        labels = _label_files(labels_dir, (*LABEL_EXTS, ".txt"))
        where = labels_dir
    unmatched = sorted(stem for stem in labels if stem not in clips)
    if unmatched and (strict or labels_dir is None):
        raise DataError(
            f"{labels[unmatched[0]]}: labels for clip {unmatched[0]!r}, but {folder} has no frame folder, array "
            f"({', '.join(ARRAY_EXTS)}) or video file named {unmatched[0]!r}"
            + (f" ({len(unmatched)} label files in {where} match no clip)" if len(unmatched) > 1 else "")
        )
    if unmatched:
        warnings.warn(f"{len(unmatched)} of the {len(labels)} label files in {labels_dir} match no clip in {folder} "
                      f"(e.g. {os.path.basename(labels[unmatched[0]])}); they are not used here", stacklevel=2)
    for stem, clip in clips.items():
        clip.labels = labels.get(stem)
        if clip.labels is None and clip.kind == "frames":
            clip.labels = _inner_labels(clip.path)
    if not clips:
        raise DataError(
            f"{folder}: no clips found (expected folders of {'/'.join(IMAGE_EXTS)} frames, "
            f"{'/'.join(ARRAY_EXTS)} arrays or video files, each with a <name>.csv or <name>.json of labels)"
        )
    if need_labels:
        for clip in clips.values():
            if clip.labels is None:
                hint = f"{labels_dir}/{clip.name}.csv" if labels_dir else f"{clip.name}.csv or {clip.name}.json next to it"
                raise DataError(f"{clip.path}: no labels; add {hint}")
    return [clips[k] for k in sorted(clips)]


def read_clip_list(path: str, need_labels: bool, clips_dir: str | None = None, labels_dir: str | None = None) -> list[ClipSource]:
    """The clips an annotation list names, in its order.

    - ``.csv``: a header with a clip column (``clip``, ``clip_path``, ``video`` or ``path``) and
      optionally a labels column (``labels``, ``label_path``, ``label`` or ``annotation``);
    - ``.json``: a list of ``{"clip": ..., "labels": ...}`` objects (or ``clip_path`` / ``label_path``);
    - ``.bundle`` or ``.txt``: one clip name per line, MS-TCN's ``splits/*.bundle``: the clip is
      the file of that name (any extension) in ``clips_dir``, its labels ``labels_dir/<name>.txt``
      (or .csv / .json).

    Relative paths are relative to the list's folder, or to ``clips_dir`` and ``labels_dir``
    when those are set. Every error names the list's file and line."""
    base = os.path.dirname(os.path.abspath(path))
    ext = os.path.splitext(path)[1].lower()
    entries: list[tuple[str, str, str | None]] = []  # (where, clip, labels)
    try:
        if ext == ".csv":
            with open(path, encoding="utf-8", newline="") as fh:
                rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(fh), 1) if any(c.strip() for c in row)]
            if not rows:
                raise DataError(f"{path}: the clip list is empty")
            header = [c.lower() for c in rows[0][1]]
            clip_col = next((header.index(c) for c in ("clip", "clip_path", "video", "path") if c in header), None)
            label_col = next((header.index(c) for c in ("labels", "label_path", "label", "annotation") if c in header), None)
            if clip_col is None:
                raise DataError(f"{path}:1: expected a header with a clip column (clip, clip_path, video or path) "
                                f"and a labels column (labels, label_path, label or annotation), found {rows[0][1]}")
            for n, row in rows[1:]:
                if len(row) <= max(clip_col, label_col or 0):
                    raise DataError(f"{path}:{n}: expected {len(header)} columns, found {len(row)}")
                entries.append((f"{path}:{n}", row[clip_col], row[label_col] or None if label_col is not None else None))
        elif ext == ".json":
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a list of {{\"clip\": ..., \"labels\": ...}} objects")
            for k, item in enumerate(data, 1):
                clip = item.get("clip", item.get("clip_path")) if isinstance(item, dict) else None
                if not isinstance(clip, str):
                    raise DataError(f"{path} (item {k}): expected an object with \"clip\" (and \"labels\"), found {item!r}")
                entries.append((f"{path} (item {k})", clip, item.get("labels", item.get("label_path"))))
        elif ext in (".bundle", ".txt"):
            with open(path, encoding="utf-8") as fh:
                names = [(n, line.strip()) for n, line in enumerate(fh, 1) if line.strip()]
            for n, name in names:
                entries.append((f"{path}:{n}", os.path.splitext(name)[0] if not os.path.isdir(os.path.join(clips_dir or base, name)) else name, None))
        else:
            raise DataError(f"{path}: a clip list is .csv, .json, .bundle or .txt")
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the clip list ({exc})") from exc
    if not entries:
        raise DataError(f"{path}: the clip list names no clips")
    out, seen = [], {}
    for where, clip, labels in entries:
        if ext in (".bundle", ".txt"):
            root = clips_dir or base
            candidates = [os.path.join(root, clip)] + [os.path.join(root, clip + e) for e in (*ARRAY_EXTS, *VIDEO_EXTS)]
            clip_path = next((c for c in candidates if _clip_kind(c) and os.path.exists(c)), None)
            if clip_path is None:
                raise DataError(f"{where}: no clip named {clip!r} in {root} (a frame folder, {'/'.join(ARRAY_EXTS)} array or video)")
            lroot = labels_dir or base
            found = [os.path.join(lroot, clip + e) for e in (".txt", *LABEL_EXTS) if os.path.isfile(os.path.join(lroot, clip + e))]
            labels = found[0] if found else None
            name = clip
        else:
            clip_path = clip if os.path.isabs(clip) else os.path.join(clips_dir or base, clip)
            if labels is not None and not os.path.isabs(labels):
                labels = os.path.join(labels_dir or base, labels)
            if not os.path.exists(clip_path) or _clip_kind(clip_path) is None:
                raise DataError(f"{where}: clip not found or of no known kind: {clip_path}")
            if labels is not None and not os.path.isfile(labels):
                raise DataError(f"{where}: label file not found: {labels}")
            name = os.path.basename(clip_path.rstrip(os.sep))
            name = name if os.path.isdir(clip_path) else os.path.splitext(name)[0]
        if labels is None and _clip_kind(clip_path) == "frames":
            labels = _inner_labels(clip_path)
        if need_labels and labels is None:
            raise DataError(f"{where}: clip {clip_path} has no labels")
        if name in seen:
            raise DataError(f"{where}: clip {name!r} is listed twice (also at {seen[name]})")
        seen[name] = where
        out.append(ClipSource(name, clip_path, _clip_kind(clip_path), labels))
    return out


# -- frames ------------------------------------------------------------------------------------
def _frame_number(name: str) -> int | None:
    digits = re.findall(r"\d+", os.path.splitext(name)[0])
    return int(digits[-1]) if digits else None


def read_frame_folder(folder: str) -> torch.Tensor:
    """(T, C, H, W) uint8 frames of a folder of images; C is 1 for grayscale images, else 3."""
    from PIL import Image, UnidentifiedImageError

    names = [n for n in os.listdir(folder) if os.path.splitext(n)[1].lower() in IMAGE_EXTS and not n.startswith(".")]
    if not names:
        raise DataError(f"{folder}: empty clip: no {'/'.join(IMAGE_EXTS)} frames in it")
    numbers = [_frame_number(n) for n in names]
    if all(n is not None for n in numbers):
        order = sorted(range(len(names)), key=lambda i: (numbers[i], names[i]))
        names = [names[i] for i in order]
        nums = [numbers[i] for i in order]
        for a, b, prev in zip(nums, nums[1:], names):
            if b == a:
                raise DataError(f"{os.path.join(folder, prev)}: two frames are numbered {a}")
            if b != a + 1:
                raise DataError(
                    f"{folder}: frame {a + 1} is missing (frames jump from {prev} to number {b}); "
                    "frame files must be numbered without gaps"
                )
    else:
        names.sort()
    frames, mode, first = [], None, None
    for name in names:
        path = os.path.join(folder, name)
        try:
            with Image.open(path) as im:
                im.load()
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                size = im.size
                arr = np.asarray(im.convert(mode))
        except FileNotFoundError as exc:
            raise DataError(f"{path}: frame image not found") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{path}: cannot read frame image ({exc})") from exc
        if first is None:
            first = (name, size)
        elif size != first[1]:
            raise DataError(
                f"{path}: frame is {size[0]}x{size[1]} but {first[0]} is {first[1][0]}x{first[1][1]}; "
                "all frames of a clip must have one size"
            )
        frames.append(arr)
    video = np.stack(frames)  # (T, H, W) or (T, H, W, 3)
    if video.ndim == 3:
        video = video[..., None]
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).contiguous()  # (T, C, H, W)


def read_array(path: str) -> torch.Tensor:
    """(T, C, H, W) frames from a .npy or .pt array shaped (T, C, H, W) or (T, H, W)."""
    try:
        if path.lower().endswith(".npy"):
            data = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: clip not found") from exc
    except Exception as exc:  # noqa: BLE001 - numpy and torch raise many kinds on a bad file
        raise DataError(f"{path}: cannot read array ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, torch.Tensor):
        raise DataError(f"{path}: expected one tensor shaped (T, C, H, W) or (T, H, W), found {type(data).__name__}")
    if data.ndim == 2:  # per-frame features, (T, F) or (F, T): the data module orients them
        if 0 in data.shape:
            raise DataError(f"{path}: empty feature array, shape {tuple(data.shape)}")
        if not torch.isfinite(data.float()).all():
            raise DataError(f"{path}: the array holds NaN or infinite values")
        return data.float().contiguous()
    if data.ndim == 3:
        data = data.unsqueeze(1)
    if data.ndim != 4:
        raise DataError(f"{path}: expected an array shaped (T, C, H, W) or (T, H, W) (frames), or (T, F) / (F, T) "
                        f"(per-frame features), found shape {tuple(data.shape)}")
    if data.shape[1] not in (1, 3) and data.shape[-1] in (1, 3):
        raise DataError(
            f"{path}: shape {tuple(data.shape)} looks channels-last; save frames as (T, C, H, W) "
            "(for example with array.transpose(0, 3, 1, 2))"
        )
    if data.shape[1] not in (1, 3):
        raise DataError(f"{path}: expected 1 or 3 channels in (T, C, H, W), found shape {tuple(data.shape)}")
    if data.shape[0] == 0:
        raise DataError(f"{path}: empty clip: the array has no frames")
    if data.is_floating_point() and not torch.isfinite(data).all():
        raise DataError(f"{path}: the array holds NaN or infinite values")
    return data.contiguous()


def read_video(path: str) -> torch.Tensor:
    """(T, 3, H, W) uint8 frames decoded with PyAV, or torchvision.io when PyAV is missing."""
    try:
        import av
    except ImportError:
        av = None
    if av is not None:
        try:
            with av.open(path) as container:
                frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        except Exception as exc:  # noqa: BLE001 - PyAV's errors vary between versions
            raise DataError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc
        if not frames:
            raise DataError(f"{path}: empty clip: the video has no frames")
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    try:
        from torchvision.io import read_video as tv_read_video
    except ImportError:
        raise DataError(f"{path}: {NO_DECODER}") from None
    try:
        frames, _, _ = tv_read_video(path, pts_unit="sec", output_format="TCHW")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc
    if frames.shape[0] == 0:
        raise DataError(f"{path}: empty clip: the video has no frames")
    return frames.contiguous()


def read_clip(clip: ClipSource) -> torch.Tensor:
    """The (T, C, H, W) frames of ``clip`` (uint8 for images and video, the array's dtype otherwise)."""
    if clip.kind == "frames":
        return read_frame_folder(clip.path)
    if clip.kind == "array":
        return read_array(clip.path)
    return read_video(clip.path)


# -- labels ------------------------------------------------------------------------------------
def _expand_segments(path: str, segs: list[tuple[int, int, str, str]], num_frames: int) -> list[str]:
    """Per-frame labels from ``(start, end, label, where)`` segments that must tile [0, num_frames)."""
    segs = sorted(segs, key=lambda s: (s[0], s[1]))
    out: list[str] = []
    for start, end, label, where in segs:
        if end <= start:
            raise DataError(f"{path}{where}: segment end {end} is not after its start {start} (end is exclusive)")
        if start > len(out):
            raise DataError(
                f"{path}{where}: frames {len(out)}..{start - 1} have no label (segments must cover every "
                "frame; start counts from 0 and end is exclusive, so the next segment starts at the previous end)"
            )
        if start < len(out):
            raise DataError(f"{path}{where}: segment starting at frame {start} overlaps the previous one, which ends at {len(out)} (end is exclusive)")
        out += [label] * (end - start)
    if len(out) != num_frames:
        raise DataError(f"{path}: segments cover {len(out)} frames but the clip has {num_frames} frames")
    return out


def _int(path: str, where: str, value, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise DataError(f"{path}{where}: {what} must be a whole frame number, found {value!r}")
    return int(number)


def read_labels(path: str, num_frames: int) -> list[str]:
    """One label per frame from a CSV or JSON label file, checked against ``num_frames``.

    CSV: a header ``label`` or ``frame,label`` (one row per frame), or ``start,end,label``
    (segments); without a header, rows of one column are per-frame labels and rows of three
    columns are segments. JSON: a list of labels, ``{"labels": [...]}``, or segments as
    ``{"segments": [{"start": 0, "end": 12, "label": "walk"}, ...]}`` or ``[[0, 12, "walk"], ...]``.
    """
    if path.lower().endswith(".txt"):  # MS-TCN's groundTruth/*.txt: one label name per line
        try:
            with open(path, encoding="utf-8") as fh:
                labels = [line.strip() for line in fh if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read labels ({exc})") from exc
        if len(labels) != num_frames:
            raise DataError(f"{path}: {len(labels)} labels for {num_frames} frames; give exactly one label per frame")
        return labels
    if path.lower().endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read JSON labels ({exc})") from exc
        if isinstance(data, dict):
            if "segments" in data:
                data = data["segments"]
            elif "labels" in data:
                data = data["labels"]
            else:
                raise DataError(f"{path}: expected a list of labels, or an object with 'labels' or 'segments'")
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a list of labels or of segments")
        if data and all(isinstance(x, (dict, list)) for x in data):
            segs = []
            for k, seg in enumerate(data):
                where = f" (segment {k + 1})"
                if isinstance(seg, dict):
                    if not {"start", "end", "label"} <= set(seg):
                        raise DataError(f"{path}{where}: a segment needs 'start', 'end' and 'label'")
                    start, end, label = seg["start"], seg["end"], seg["label"]
                elif len(seg) == 3:
                    start, end, label = seg
                else:
                    raise DataError(f"{path}{where}: a segment is [start, end, label]")
                segs.append((_int(path, where, start, "start"), _int(path, where, end, "end"), str(label), where))
            return _expand_segments(path, segs, num_frames)
        labels = [str(x) for x in data]
    else:
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(fh), 1) if any(c.strip() for c in row)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot read CSV labels ({exc})") from exc
        if not rows:
            raise DataError(f"{path}: no labels in the file")
        header = [c.lower() for c in rows[0][1]]
        if "label" in header:
            rows = rows[1:]
            col = {name: header.index(name) for name in header}
            segmented = "start" in col and "end" in col
        else:
            width = len(rows[0][1])
            if width not in (1, 3):
                raise DataError(f"{path}:1: expected a header (label | frame,label | start,end,label) or rows of 1 or 3 columns")
            col = {"label": 0} if width == 1 else {"start": 0, "end": 1, "label": 2}
            segmented = width == 3
        for lineno, row in rows:
            if len(row) <= max(col.values()):
                raise DataError(f"{path}:{lineno}: expected {len(header) if 'label' in header else len(col)} columns, found {len(row)}")
        if segmented:
            segs = [(_int(path, f":{n}", r[col["start"]], "start"), _int(path, f":{n}", r[col["end"]], "end"), r[col["label"]], f":{n}")
                    for n, r in rows]
            return _expand_segments(path, segs, num_frames)
        if "frame" in col:
            numbered = sorted((_int(path, f":{n}", r[col["frame"]], "frame"), n, r[col["label"]]) for n, r in rows)
            for expect, (frame, lineno, _) in enumerate(numbered):
                if frame != expect:
                    raise DataError(f"{path}:{lineno}: frame {frame} found where frame {expect} was expected (one row per frame, from 0)")
            labels = [label for _, _, label in numbered]
        else:
            labels = [r[col["label"]] for _, r in rows]
    if any(label == "" for label in labels):
        raise DataError(f"{path}: frame {labels.index('')} has an empty label")
    if len(labels) != num_frames:
        raise DataError(f"{path}: {len(labels)} labels for {num_frames} frames; give exactly one label per frame (or segments)")
    return labels
