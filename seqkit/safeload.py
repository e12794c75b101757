"""``read_checkpoint``: a checkpoint file read with ``torch.load(weights_only=True)``, and one-line
errors naming the option it came from. A leaf module (the model reads ``model.init_from`` with
it, and :mod:`seqkit.checkpoint` rebuilds models), so it imports nothing else of seqkit's but
its errors."""

from __future__ import annotations

import os

import torch

from seqkit.errors import SeqkitError


def read_checkpoint(ckpt_path: str, key: str = "--ckpt_path") -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint, with one-line errors that start with
    ``key``. Never unpickles: a checkpoint is a file people download and share."""
    if not os.path.exists(ckpt_path):
        raise SeqkitError(f"{key}: checkpoint not found: {ckpt_path}")
    try:
        return torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise SeqkitError(f"{key}: not a seqkit checkpoint, or one that needs unsafe loading: {ckpt_path}") from None
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise SeqkitError(f"{key}: cannot read checkpoint {ckpt_path}: {first}") from None
