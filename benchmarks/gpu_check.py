"""One prepared GPU check: training throughput of every task config, Lightning vs a raw PyTorch loop.

For each task config (configs/**/*.yaml except configs/trainer/) it builds the model and data
exactly as ``seqkit fit`` does, then

1. trains ``--steps`` steps with the seqkit Trainer on one device (bf16 mixed precision on GPU,
   nn.LSTM on its fused cuDNN kernel), and
2. trains the same model on the same data loader for ``--steps`` steps in a plain PyTorch loop
   (autocast, backward, gradient clipping, optimizer step: what Lightning automates),

timing the steps after ``--warmup`` and printing samples/s for both, their ratio, peak GPU memory,
and how many "not part of single contiguous chunk of memory" (flatten_parameters) warnings the
LSTM raised. ``--layers`` also runs configs/classify.yaml for a few steps under each trainer layer
(ddp, fsdp, bf16, fp16) through the real CLI, one device, and reports whether it ran.

    python benchmarks/gpu_check.py                              # on a GPU machine
    python benchmarks/gpu_check.py --layers --json gpu_check.json
    python benchmarks/gpu_check.py --device cpu --steps 6 --warmup 2 --configs configs/classify.yaml

Install first as the README says (``pip install . plugins/*/``): the task configs need the
plugins' entry points. On CPU (``--device cpu``) it runs the same code in float32: a smoke test
of the script, not a benchmark.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLATTEN_WARNING = "contiguous chunk of memory"


def task_configs(patterns: list[str] | None) -> list[str]:
    import yaml

    paths = []
    for pattern in patterns or [str(ROOT / "configs" / "**" / "*.yaml")]:
        paths += glob.glob(pattern, recursive=True)
    found = []
    for path in sorted(set(paths)):
        if f"{os.sep}trainer{os.sep}" in path:
            continue
        with open(path) as fh:
            cfg = yaml.safe_load(fh) or {}
        if "model" in cfg and "data" in cfg:
            found.append(path)
    return found


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def _reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def build(config: str, device: str, precision: str, steps: int, work: str):
    """Model, data module and trainer from ``config``, as ``seqkit fit`` builds them."""
    from seqkit import plugins
    from seqkit.cli import SeqkitCLI

    plugins.get_registry()
    args = ["--config", config, f"--trainer.default_root_dir={work}",
            f"--trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "--trainer.devices=1",
            "--trainer.strategy=auto", f"--trainer.precision={precision}", f"--trainer.max_steps={steps}",
            "--trainer.max_epochs=100000", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
            "--trainer.logger=false", "--trainer.enable_checkpointing=false", "--trainer.callbacks=[]",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    return SeqkitCLI(args=args, run=False)


def _optimizer(model):
    import torch

    out = model.configure_optimizers()
    if isinstance(out, torch.optim.Optimizer):
        return out
    if isinstance(out, dict):
        return out["optimizer"]
    first = out[0]
    return first[0] if isinstance(first, (list, tuple)) else first


def lightning_run(cli, device: str, warmup: int) -> dict:
    """Train with the seqkit Trainer; time the steps after ``warmup``."""
    import lightning.pytorch as pl

    class Timer(pl.Callback):
        def __init__(self):
            self.seen = 0
            self.samples = 0
            self.t0 = self.t1 = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.seen == warmup:
                _sync(device)
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen += 1
            if self.seen > warmup:
                self.samples += batch.size
                _sync(device)
                self.t1 = time.perf_counter()

    timer = Timer()
    cli.trainer.callbacks.append(timer)
    _reset_peak(device)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    timed = timer.seen - warmup
    if timer.t0 is None or timed <= 0:
        raise RuntimeError(f"only {timer.seen} steps ran; raise --steps above --warmup")
    return {"samples_per_s": timer.samples / (timer.t1 - timer.t0), "steps": timed, "peak_mb": _peak_mb(device)}


def raw_run(cli, device: str, precision: str, steps: int, warmup: int) -> dict:
    """The same model and loader in a plain PyTorch loop: what Lightning automates, by hand."""
    import torch

    model, dm = cli.model, cli.datamodule
    if not model.automatic_optimization:
        return {"skipped": "the model optimizes manually (truncated BPTT): no plain loop to compare with"}
    torch_device = torch.device(device)
    model.to(torch_device).train()
    optimizer = _optimizer(model)
    clip = cli.trainer.gradient_clip_val
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device) if dtype is torch.float16 else None
    loader = dm.train_dataloader()
    _reset_peak(device)
    seen = samples = 0
    t0 = None
    while seen < steps:
        for batch in loader:
            if seen == warmup:
                _sync(device)
                t0 = time.perf_counter()
            batch = model.transfer_batch_to_device(batch, torch_device, 0)
            with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
                loss = model.head.step(model, batch, "train")
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seen += 1
            if seen > warmup:
                samples += batch.size
            if seen >= steps:
                break
    _sync(device)
    return {"samples_per_s": samples / (time.perf_counter() - t0), "steps": steps - warmup, "peak_mb": _peak_mb(device)}


def describe_rnn(model) -> str:
    import torch

    rnn = getattr(model, "rnn", None)
    if rnn is None:
        return "none (head decodes)"
    fused = any(isinstance(m, torch.nn.LSTM) for m in rnn.modules())
    return f"{type(rnn).__name__} ({'nn.LSTM: cuDNN on GPU' if fused else 'per-step cell'})"


def check_config(config: str, device: str, precision: str, steps: int, warmup: int) -> dict:
    import tempfile

    row: dict = {"config": os.path.relpath(config, ROOT)}
    with warnings.catch_warnings(record=True) as caught, tempfile.TemporaryDirectory(prefix="seqkit-gpu-check-") as work:
        warnings.simplefilter("always")
        try:
            cli = build(config, device, precision, steps, work)
            row["rnn"] = describe_rnn(cli.model)
            row["params"] = sum(p.numel() for p in cli.model.parameters())
            row["batch_size"] = cli.datamodule.batch_size
            row["lightning"] = lightning_run(cli, device, warmup)
            row["raw"] = raw_run(cli, device, precision, steps, warmup)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next config
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    row["flatten_warnings"] = sum(FLATTEN_WARNING in str(w.message) for w in caught)
    return row


def check_layers(device: str, steps: int) -> list[dict]:
    """configs/classify.yaml under each trainer layer, through the real CLI, on one device."""
    import tempfile

    rows = []
    for layer in ("ddp", "fsdp", "bf16", "fp16"):
        if device == "cpu" and layer == "fsdp":
            rows.append({"layer": "fsdp.yaml", "rc": 0, "seconds": 0.0, "flatten_warnings": 0,
                         "last_line": "skipped: Lightning's FSDP needs a GPU"})
            continue
        cmd = [sys.executable, "-m", "seqkit", "fit", "--config", str(ROOT / "configs" / "classify.yaml"),
               "--config", str(ROOT / "configs" / "trainer" / f"{layer}.yaml"), "--trainer.devices=1",
               f"--trainer.max_steps={steps}", "--trainer.limit_val_batches=2", "--trainer.logger=false",
               "--trainer.enable_checkpointing=false", "--trainer.enable_progress_bar=false"]
        if device == "cpu":
            cmd.append("--trainer.accelerator=cpu")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="seqkit-gpu-check-") as work:  # logs land there, not in the repo
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env, timeout=600)
        out = proc.stdout + proc.stderr
        lines = [ln for ln in out.splitlines() if ln.strip()]
        rows.append({"layer": f"{layer}.yaml", "rc": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
                     "flatten_warnings": out.count(FLATTEN_WARNING),
                     "last_line": lines[-1][:200] if lines else ""})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None, help="default: cuda when available")
    parser.add_argument("--precision", default=None, help="default: bf16-mixed on cuda, 32-true on cpu")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run, warmup included")
    parser.add_argument("--warmup", type=int, default=10, help="steps not timed (cuDNN setup, allocator)")
    parser.add_argument("--configs", nargs="*", help="task configs (default: configs/**/*.yaml but trainer/)")
    parser.add_argument("--layers", action="store_true", help="also run classify.yaml under each trainer layer")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    precision = args.precision or ("bf16-mixed" if device == "cuda" else "32-true")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    card = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    info = {"device": card, "torch": torch.__version__, "precision": precision, "steps": args.steps,
            "warmup": args.warmup, "cudnn": bool(device == "cuda" and torch.backends.cudnn.is_available()
                                                  and torch.backends.cudnn.enabled)}
    print(f"seqkit gpu_check on {card} | torch {torch.__version__} | {precision} | cuDNN {info['cudnn']} | "
          f"{args.steps} steps, {args.warmup} warm-up")
    results = []
    for config in task_configs(args.configs):
        row = check_config(config, device, precision, args.steps, args.warmup)
        results.append(row)
        if "error" in row:
            print(f"{row['config']:<40} ERROR {row['error']}")
            continue
        lit, raw = row["lightning"], row["raw"]
        mem = f"{lit['peak_mb']:.0f}/{raw.get('peak_mb') or 0:.0f} MiB" if lit["peak_mb"] is not None else "-"
        if "skipped" in raw:
            print(f"{row['config']:<40} seqkit {lit['samples_per_s']:9.0f} samples/s | raw: {raw['skipped']} | "
                  f"peak {mem} | {row['rnn']} | flatten warnings {row['flatten_warnings']}")
        else:
            ratio = lit["samples_per_s"] / raw["samples_per_s"]
            print(f"{row['config']:<40} seqkit {lit['samples_per_s']:9.0f} samples/s | raw {raw['samples_per_s']:9.0f} "
                  f"| seqkit/raw {ratio:4.2f} | peak seqkit/raw {mem} | {row['rnn']} | "
                  f"flatten warnings {row['flatten_warnings']}")
    layers = check_layers(device, 5) if args.layers else []
    for row in layers:
        status = ("ok" if not row["last_line"].startswith("skipped") else row["last_line"]) if row["rc"] == 0 \
            else f"FAILED rc={row['rc']}: {row['last_line']}"
        print(f"layer {row['layer']:<10} {status} ({row['seconds']} s, flatten warnings {row['flatten_warnings']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "configs": results, "layers": layers}, fh, indent=2)
    failed = [r for r in results if "error" in r] + [r for r in layers if r["rc"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
