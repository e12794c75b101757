"""``seqkit average``: average the weights of several checkpoints of one run (OpenNMT-py's
``average_models``, fairseq's ``average_checkpoints``): the mean of the last K checkpoints of a
run is usually a better model than any one of them (Vaswani et al. 2017; Junczys-Dowmunt et
al. 2016).

The output is a checkpoint like the newest input: its data state (vocabularies, scalers), its
seqkit config and its counters, with the averaged weights and without optimizer or scheduler
state, so ``seqkit test/predict/export --ckpt_path`` read it like any other (resuming training
from it starts a fresh optimizer). Every input is read with ``weights_only=True``; the output is
written atomically.

    seqkit average runs/translation/version_0/checkpoints --last 5 --output averaged.ckpt
    seqkit average a.ckpt b.ckpt c.ckpt --output averaged.ckpt
"""

from __future__ import annotations

import argparse
import glob
import os

import torch

from seqkit.errors import SeqkitError
from seqkit.safeload import read_checkpoint

DROPPED = ("optimizer_states", "lr_schedulers", "callbacks", "loops")


def _inputs(paths: list[str], last: int | None) -> list[str]:
    """The checkpoint files named, folders expanded to their *.ckpt (oldest first by file time)
    except last.ckpt and best.ckpt, which repeat a step the folder already holds."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = [f for f in glob.glob(os.path.join(path, "*.ckpt")) if os.path.basename(f) not in ("last.ckpt", "best.ckpt")]
            if not found:
                raise SeqkitError(f"seqkit average: no *.ckpt files in {path}")
            files += sorted(found, key=os.path.getmtime)
        else:
            files.append(path)
    if last is not None:
        if last < 1:
            raise SeqkitError(f"seqkit average: --last must be >= 1, got {last}")
        files = files[-last:]
    if not files:
        raise SeqkitError("seqkit average: no checkpoints given")
    return files


def average_checkpoints(files: list[str]) -> dict:
    """The newest checkpoint (by global step) with ``state_dict`` the mean of every file's: floating
    tensors are averaged in float64, other tensors (counters) come from the newest."""
    ckpts = [(read_checkpoint(f, "seqkit average"), f) for f in files]
    for ckpt, f in ckpts:
        if not isinstance(ckpt.get("state_dict"), dict):
            raise SeqkitError(f"seqkit average: {f} holds no state_dict (not a seqkit checkpoint)")
    ckpts.sort(key=lambda cf: int(cf[0].get("global_step", 0) or 0))
    newest, newest_file = ckpts[-1]
    ref = newest["state_dict"]
    for ckpt, f in ckpts:
        sd = ckpt["state_dict"]
        if sd.keys() != ref.keys():
            extra, missing = sorted(set(sd) - set(ref)), sorted(set(ref) - set(sd))
            raise SeqkitError(f"seqkit average: {f} has other weights than {newest_file} "
                              f"(extra {extra[:3]}, missing {missing[:3]}): only checkpoints of one model average")
        for k, v in sd.items():
            if tuple(v.shape) != tuple(ref[k].shape):
                raise SeqkitError(f"seqkit average: {k} is {tuple(v.shape)} in {f} but {tuple(ref[k].shape)} in "
                                  f"{newest_file}: only checkpoints of one model average")
    averaged = {}
    for k, v in ref.items():
        if torch.is_floating_point(v):
            total = sum(c["state_dict"][k].to(torch.float64) for c, _ in ckpts)
            averaged[k] = (total / len(ckpts)).to(v.dtype)
        else:
            averaged[k] = v.clone()
    out = {k: v for k, v in newest.items() if k not in DROPPED}
    out["state_dict"] = averaged
    out.setdefault("seqkit", {})
    out["seqkit"] = {**out["seqkit"], "averaged_from": [os.path.basename(f) for _, f in ckpts]}
    return out


def average_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="seqkit average",
        description="Average the weights of several checkpoints of one run into one checkpoint.")
    parser.add_argument("checkpoints", nargs="+", help="checkpoint files, or a run's checkpoints/ folder")
    parser.add_argument("--last", type=int, default=None, help="average only the newest K (by file time)")
    parser.add_argument("--output", required=True, help="the averaged checkpoint to write")
    args = parser.parse_args(argv)
    files = _inputs(args.checkpoints, args.last)
    out = average_checkpoints(files)
    from seqkit.callbacks import atomic_write

    with atomic_write(args.output, "wb") as fh:
        torch.save(out, fh)
    print(f"seqkit: averaged {len(files)} checkpoints into {args.output}")
    return 0
