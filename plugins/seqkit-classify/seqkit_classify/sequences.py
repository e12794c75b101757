"""Multivariate sequence classification: numeric sequences of varying length, one label each.

Reads your recordings (sensors, gestures, speech features) from

* ``.npz``: arrays ``x`` (N, T, F) or (N, T), ``y`` (N,) labels, optional ``lengths`` (N,);
* ``.npy``: the (N, T, F) array itself, with labels in ``<name>_y.npy`` (or ``<name>.labels.npy``)
  and optional lengths in ``<name>_lengths.npy`` beside it;
* ``.ts``: the UEA/UCR text format that sktime and timeseriesclassification.com use
  (``@problemName``, ``@univariate``, ``@classLabel true a b c``, ``@data``; one case per line,
  dimensions separated by ``:``, values by ``,``, the label last).

Without ``lengths``, trailing steps that are NaN in every feature are padding (sktime pads unequal
lengths with NaN). Missing values inside a sequence (``?`` or NaN) are an error naming the file and
case unless ``missing: interpolate`` fills them linearly per feature. Features are standardised
with the training data's mean and spread (real steps only). Batches are right-padded and the LSTM
stack packs them by length, so padding never changes a prediction.

The default data is generated (seeded, no download): five gesture-like classes over three
channels whose lengths vary from ``min_len`` to ``max_len``; two classes differ only in the order
of two bumps, so the order of the steps matters.
"""

from __future__ import annotations

import math
import os
from typing import Literal, Optional

import numpy as np
import torch
from seqkit import Batch, DataError, Examples, SeqDataModule, Spec, pad, require_file

GESTURES = ("rise", "fall", "wave", "a_then_b", "b_then_a")


# -- generated example ----------------------------------------------------------------------------
def generate_gestures(n: int, min_len: int, max_len: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """``n`` (sequence (T, 3), label) pairs of the generated gesture task, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        T = int(rng.integers(min_len, max_len + 1))
        t = np.linspace(0.0, 1.0, T)
        label = GESTURES[int(rng.integers(len(GESTURES)))]
        x = rng.normal(0.0, 0.3, size=(T, 3))
        x += rng.normal(0.0, 0.5, size=(1, 3))  # a per-recording offset, as a sensor's drift
        bump = lambda centre: np.exp(-((t - centre) ** 2) / (2 * 0.06**2))  # noqa: E731
        if label == "rise":
            x[:, 0] += 2 * t
        elif label == "fall":
            x[:, 0] += 2 * (1 - t)
        elif label == "wave":
            x[:, 1] += np.sin(2 * math.pi * rng.uniform(2, 4) * t + rng.uniform(0, 2 * math.pi))
        else:  # the same two bumps, in one order or the other
            first, second = sorted(rng.uniform(0.15, 0.85, size=2))
            if second - first < 0.25:
                first, second = max(0.1, first - 0.15), min(0.9, second + 0.15)
            a, b = (first, second) if label == "a_then_b" else (second, first)
            x[:, 0] += 1.5 * bump(a)
            x[:, 2] += 1.5 * bump(b)
        out.append((x.astype(np.float32), label))
    return out


# -- readers ---------------------------------------------------------------------------------------
def _trim(x: np.ndarray, length: Optional[int]) -> np.ndarray:
    """(T, F) real steps of one padded sequence: the first ``length`` or those before trailing NaNs."""
    if length is not None:
        return x[: int(length)]
    real = ~np.isnan(x).all(1)
    last = int(np.nonzero(real)[0][-1]) + 1 if real.any() else 0
    return x[:last]


def _from_arrays(path: str, x: np.ndarray, y: Optional[np.ndarray], lengths: Optional[np.ndarray]) -> list:
    if x.ndim == 2:
        x = x[:, :, None]  # univariate (N, T) -> (N, T, 1)
    if x.ndim != 3:
        raise DataError(f"{path}: expected sequences shaped (N, T, F) or (N, T), got {x.shape}")
    N, T, _ = x.shape
    if y is not None and len(y) != N:
        raise DataError(f"{path}: {N} sequences but {len(y)} labels")
    if lengths is not None:
        lengths = np.asarray(lengths).reshape(-1)
        if len(lengths) != N:
            raise DataError(f"{path}: {N} sequences but {len(lengths)} lengths")
        bad = np.nonzero((lengths < 1) | (lengths > T))[0]
        if len(bad):
            raise DataError(f"{path}: sequence {bad[0]} has length {lengths[bad[0]]}, outside 1..{T} (the padded length)")
    try:
        x = x.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: sequences are not numbers ({exc})") from None
    rows = []
    for i in range(N):
        seq = _trim(x[i], None if lengths is None else lengths[i])
        label = None if y is None else str(y[i].item() if hasattr(y[i], "item") else y[i])
        rows.append((seq, label, f"{path}: sequence {i}"))
    return rows


def read_npz(path: str, labels: bool = True) -> list:
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        xkey = next((k for k in ("x", "X", "data", "inputs") if k in keys), None)
        if xkey is None:
            raise DataError(f"{path}: no array 'x' (found: {', '.join(sorted(keys))})")
        ykey = next((k for k in ("y", "Y", "labels", "targets") if k in keys), None)
        if labels and ykey is None:
            raise DataError(f"{path}: no label array 'y' (found: {', '.join(sorted(keys))})")
        return _from_arrays(path, data[xkey], data[ykey] if ykey else None, data["lengths"] if "lengths" in keys else None)


def _sibling(path: str, *suffixes: str) -> Optional[str]:
    stem = path[: -len(".npy")]
    for suffix in suffixes:
        if os.path.exists(stem + suffix):
            return stem + suffix
    return None


def read_npy(path: str, labels: bool = True) -> list:
    x = np.load(path, allow_pickle=False)
    ypath = _sibling(path, "_y.npy", ".labels.npy", "_labels.npy")
    if labels and ypath is None:
        raise DataError(f"{path}: labels not found; put them in {path[:-4]}_y.npy")
    lpath = _sibling(path, "_lengths.npy", ".lengths.npy")
    y = np.load(ypath, allow_pickle=False) if ypath else None
    return _from_arrays(path, x, y, np.load(lpath, allow_pickle=False) if lpath else None)


def read_ts(path: str, labels: bool = True) -> tuple[list, Optional[list[str]]]:
    """(rows, declared class labels) of a UEA/UCR ``.ts`` file."""
    rows, declared, in_data, has_labels = [], None, False, True
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                if not in_data:
                    key, _, value = line.partition(" ")
                    key = key.lower()
                    if key == "@timestamps" and value.strip().lower() == "true":
                        raise DataError(f"{path}:{lineno}: time-stamped .ts data is not supported; export plain values")
                    if key == "@classlabel":
                        parts = value.split()
                        has_labels = bool(parts) and parts[0].lower() == "true"
                        declared = parts[1:] if has_labels else None
                    elif key == "@targetlabel" and value.split()[:1] == ["true"]:
                        raise DataError(f"{path}:{lineno}: regression .ts files (@targetlabel) are not supported")
                    elif key == "@data":
                        in_data = True
                    elif not key.startswith("@"):
                        raise DataError(f"{path}:{lineno}: expected a @header line or @data before the cases")
                    continue
                fields = line.split(":")
                label = None
                if has_labels:
                    label = fields.pop().strip()
                    if not fields:
                        raise DataError(f"{path}:{lineno}: a case needs values before its class label")
                dims = []
                for d, field in enumerate(fields):
                    try:
                        dims.append([math.nan if v.strip() in ("?", "NaN", "nan", "") else float(v) for v in field.split(",")])
                    except ValueError:
                        raise DataError(f"{path}:{lineno}: dimension {d + 1} has a value that is not a number") from None
                lens = {len(v) for v in dims}
                if len(lens) > 1:
                    raise DataError(f"{path}:{lineno}: the dimensions of this case have different lengths {sorted(lens)}")
                if rows and len(dims) != rows[0][0].shape[1]:
                    raise DataError(f"{path}:{lineno}: {len(dims)} dimensions, but earlier cases have {rows[0][0].shape[1]}")
                if declared is not None and label not in declared:
                    raise DataError(f"{path}:{lineno}: class label {label!r} is not declared in @classLabel ({' '.join(declared)})")
                seq = _trim(np.asarray(dims, dtype=np.float32).T, None)  # (T, F), trailing '?' are padding
                rows.append((seq, label if labels else None, f"{path}:{lineno}"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from exc
    if not in_data:
        raise DataError(f"{path}: no @data line")
    if labels and not has_labels:
        raise DataError(f"{path}: @classLabel is false, so the file has no labels to train or test on")
    return rows, declared


def read_sequences(path: str, labels: bool = True) -> tuple[list, Optional[list[str]]]:
    """(sequence (T, F) float32, label or None, where) rows and the labels the file declares."""
    require_file(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return read_npz(path, labels), None
    if ext == ".npy":
        return read_npy(path, labels), None
    if ext == ".ts":
        return read_ts(path, labels)
    raise DataError(f"{path}: unknown format {ext!r}; use .npz, .npy or .ts")


def _fill(seq: np.ndarray, where: str, missing: str) -> np.ndarray:
    holes = np.isnan(seq)
    if not holes.any():
        return seq
    if missing == "error":
        step = int(np.nonzero(holes.any(1))[0][0])
        raise DataError(f"{where}: missing value at step {step + 1} (set data.missing: interpolate to fill gaps)")
    steps = np.arange(len(seq))
    out = seq.copy()
    for f in range(seq.shape[1]):
        known = ~holes[:, f]
        if not known.any():
            raise DataError(f"{where}: feature {f + 1} has no values at all")
        out[:, f] = np.interp(steps, steps[known], seq[known, f])
    return out


# -- the data module --------------------------------------------------------------------------------
class SequenceArrayData(SeqDataModule):
    """Numeric sequences of varying length with one label each: .npz / .npy / .ts files, or a
    generated gesture task."""

    fitted = {"labels": list, "mean": np.ndarray, "std": np.ndarray}

    def __init__(
        self,
        train_file: Optional[str] = None,
        val_file: Optional[str] = None,
        test_file: Optional[str] = None,
        predict_file: Optional[str] = None,
        val_fraction: float = 0.1,
        normalize: bool = True,
        missing: Literal["error", "interpolate"] = "error",
        num_train: int = 2000,
        num_val: int = 300,
        num_test: int = 300,
        min_len: int = 20,
        max_len: int = 80,
        **kwargs,
    ) -> None:
        """
        Args:
            train_file: Training sequences (.npz, .npy or .ts); null generates the gesture task.
            val_file: Validation sequences; null holds out val_fraction of train_file.
            test_file: Test sequences (needed for `seqkit test` when train_file is set).
            predict_file: Sequences to classify (labels there are not needed). Default: the test data.
            val_fraction: Share of train_file held out for validation when val_file is null; 0
                trains on all of it with no validation (after choosing the epoch count on a
                held-out share, as practitioners do with the UEA/UCR archives).
            normalize: Standardise each feature with the training data's mean and spread.
            missing: Missing values inside a sequence: "error" (names the case) or "interpolate".
            num_train: Generated training sequences.
            num_val: Generated validation sequences.
            num_test: Generated test sequences.
            min_len: Shortest generated sequence.
            max_len: Longest generated sequence.
        """
        super().__init__(**kwargs)
        if (val_file or test_file) and not train_file:
            raise DataError("data.val_file/test_file need data.train_file")
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if not 2 <= min_len <= max_len:
            raise DataError(f"data.min_len must be >= 2 and <= data.max_len (got {min_len} and {max_len})")
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.predict_file, self.val_fraction, self.normalize, self.missing = predict_file, val_fraction, normalize, missing
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_len, self.max_len = min_len, max_len
        self._declared: list[str] | None = None  # the label set a .ts file declares
        self._cache: dict[str, list] = {}

    def _raw(self, split: str) -> list:
        """(sequence, label, where) rows of a split."""
        if split in self._cache:
            return self._cache[split]
        train_file = self.files["train"]
        declared = None
        if train_file is None:
            offset = {"train": 0, "val": 1, "test": 2}[split]
            gen = generate_gestures(self.sizes[split], self.min_len, self.max_len, self.seed * 1000 + offset)
            rows = [(x, label, f"generated {split} sequence {k}") for k, (x, label) in enumerate(gen)]
        elif split == "test":
            rows, _ = read_sequences(self.split_file("test_file", self.files["test"]))
        elif split == "val" and self.files["val"] is not None:
            rows, _ = read_sequences(self.split_file("val_file", self.files["val"]))
        else:
            rows, declared = read_sequences(self.split_file("train_file", train_file))
            if self.files["val"] is None:  # hold out a seeded share for validation
                order = np.random.default_rng(self.seed).permutation(len(rows))
                n_val = max(1, round(len(rows) * self.val_fraction)) if self.val_fraction > 0 else 0
                if n_val >= len(rows):
                    raise DataError(f"{train_file}: {len(rows)} sequences are too few to hold out a validation share")
                keep = sorted(order[:n_val]) if split == "val" else sorted(order[n_val:])
                rows = [rows[k] for k in keep]
        rows = [(_fill(x, where, self.missing), label, where) for x, label, where in rows]
        for x, _, where in rows:
            if len(x) == 0:
                raise DataError(f"{where}: empty sequence")
        if split == "train":
            self._declared = declared
        self._cache[split] = rows
        return rows

    def fit_state(self) -> None:
        train = self._raw("train")
        widths = {x.shape[1] for x, _, _ in train}
        if len(widths) > 1:
            raise DataError(f"training sequences have different numbers of features: {sorted(widths)}")
        self.labels = list(self._declared) if self._declared else sorted({label for _, label, _ in train})
        steps = np.concatenate([x for x, _, _ in train])  # (all real steps, F): padding never counts
        self.mean = (steps.mean(0) if self.normalize else np.zeros(steps.shape[1])).astype(np.float32)
        std = steps.std(0) if self.normalize else np.ones(steps.shape[1])
        self.std = np.where(std > 1e-8, std, 1.0).astype(np.float32)  # a constant feature is centred, not divided by zero

    def build_spec(self) -> Spec:
        return Spec(input_kind="features", input_size=int(len(self.mean)), num_classes=len(self.labels),
                    labels=list(self.labels))

    def _encode(self, rows: list, labelled: bool = True) -> Examples:
        index = {label: i for i, label in enumerate(self.labels)}
        items = []
        for x, label, where in rows:
            if x.shape[1] != len(self.mean):
                raise DataError(f"{where}: {x.shape[1]} features, but the model was trained on {len(self.mean)}")
            if not labelled or label is None:
                y = -1
            elif label in index:
                y = index[label]
            else:
                raise DataError(f"{where}: label {label!r} was not seen in training (known: {', '.join(self.labels)})")
            items.append((torch.from_numpy(((x - self.mean) / self.std).astype(np.float32)), y, where))
        return Examples(items)

    def dataset(self, split: str) -> Examples:
        if split != "predict":
            return self._encode(self._raw(split))
        if self.predict_file is None:
            return self._encode(self._raw("test"), labelled=False)
        rows, _ = read_sequences(self.split_file("predict_file"), labels=False)
        return self._encode([(_fill(x, w, self.missing), None, w) for x, _, w in rows], labelled=False)

    def collate(self, examples: list) -> Batch:
        inputs, lengths = pad([x for x, _, _ in examples], value=0.0)  # (B, T, F)
        targets = torch.tensor([y for _, y, _ in examples], dtype=torch.long)
        return Batch(inputs=inputs, lengths=lengths, targets=targets, names=[w for _, _, w in examples])
