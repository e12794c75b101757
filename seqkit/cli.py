"""The ``seqkit`` command: LightningCLI (fit, validate, test, predict) plus ``seqkit plugins``.

Plugins are loaded before the parser is built, so every registered class resolves by its short
name in YAML. Errors a user can fix print as one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Optional

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from jsonargparse import lazy_instance

from seqkit import plugins as _plugins
from seqkit.callbacks import AtomicCheckpointIO, PredictionWriter
from seqkit.data import _RESTORE, SeqDataModule
from seqkit.errors import SeqkitError
from seqkit.model import SequenceModel

SUBCOMMANDS = ("fit", "validate", "test", "predict")

# What the Trainer does unless a config says otherwise.
TRAINER_DEFAULTS: dict[str, Any] = {
    # LSTMs still see exploding gradients on long sequences (Pascanu et al. 2013): clip the norm.
    "gradient_clip_val": 1.0,
    # seqkit's data modules shard their own length-bucketed batches across ranks.
    "use_distributed_sampler": False,
    "logger": lazy_instance(CSVLogger, save_dir="runs", name="seqkit"),
    "default_root_dir": "runs",
}

# key fragment in a jsonargparse message -> registry kind whose names are the valid choices
_KEY_KINDS = {"model.head": "heads", "model.encoder": "encoders", "data": "datamodules"}


def _explain(message: str) -> str:
    """Shorten jsonargparse's message and add the installed choices for class_path errors."""
    first = message.strip().splitlines()
    text = " ".join(line.strip() for line in first if line.strip())
    text = re.sub(r"\s+", " ", text)
    registry = _plugins.get_registry()
    for key, kind in _KEY_KINDS.items():
        if f'"{key}"' in text or f"'{key}'" in text or f"key {key}" in text:
            bad = re.search(r"(?:dot import path string|Import path|import) ['\"]?([\w.]+)['\"]?", text)
            names = ", ".join(registry.names(kind)) or "(none installed)"
            lead = f"unknown class {bad.group(1)!r} for {key}" if bad and "import" in text.lower() else None
            if lead:
                return f"{lead}; installed {kind}: {names}"
            return f"{text} (installed {kind}: {names})"
    return text


class SeqkitArgumentParser(LightningArgumentParser):
    """LightningCLI's parser with seqkit's one-line errors."""

    def error(self, message: str, ex: Optional[Exception] = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        sys.stderr.write(f"seqkit: error: {_explain(message)}\n")
        sys.exit(2)


class SeqkitCLI(LightningCLI):
    """LightningCLI wired for seqkit: data-derived sizes are linked into the model, predictions
    have a writer, checkpoints are written atomically and carry the resolved config."""

    def __init__(self, args: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("trainer_defaults", TRAINER_DEFAULTS)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_kwargs", {"default_env": False})
        super().__init__(
            SequenceModel,
            SeqDataModule,
            subclass_mode_data=True,
            parser_class=SeqkitArgumentParser,
            args=args,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.spec", "model.spec", apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config)
        ckpt_path = config.get("ckpt_path")
        # "last", "best", "hpc", "registry" are resolved by Lightning itself later
        state = _datamodule_state(ckpt_path) if ckpt_path and os.path.sep in ckpt_path or (ckpt_path or "").endswith(".ckpt") else None
        self._restore_token = _RESTORE.set(state)
        try:
            self._resolved_yaml = self._parser(self.subcommand).dump(config, skip_none=False, skip_validation=True)
        except Exception:  # noqa: BLE001 - the dump is a convenience kept in checkpoints
            self._resolved_yaml = None

    def after_instantiate_classes(self) -> None:
        _RESTORE.reset(self._restore_token)
        self.model.seqkit_config = self._resolved_yaml
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io).__name__ == "TorchCheckpointIO":
            strategy.checkpoint_io = AtomicCheckpointIO()


def _load_checkpoint(path: str) -> dict:
    import torch

    if not os.path.exists(path):
        raise SeqkitError(f"--ckpt_path: checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise SeqkitError(f"--ckpt_path: cannot read checkpoint {path}: {exc}") from exc


def _datamodule_state(path: str) -> dict | None:
    ckpt = _load_checkpoint(path)
    registry = _plugins.get_registry()
    for name in registry.names("datamodules"):
        if name in ckpt:
            return ckpt[name]
    for key, value in ckpt.items():  # a data module registered under another name
        if isinstance(value, dict) and key[:1].isupper():
            return value
    return None


def _config_from_checkpoint(argv: list[str]) -> list[str]:
    """``seqkit predict --ckpt_path X`` with no --config: use the config saved in the checkpoint."""
    if not argv or argv[0] not in ("validate", "test", "predict"):
        return argv
    if any(a in ("-c", "--config") or a.startswith("--config=") for a in argv):
        return argv
    ckpt_path = None
    for i, a in enumerate(argv):
        if a == "--ckpt_path" and i + 1 < len(argv):
            ckpt_path = argv[i + 1]
        elif a.startswith("--ckpt_path="):
            ckpt_path = a.split("=", 1)[1]
    if not ckpt_path:
        return argv
    saved = (_load_checkpoint(ckpt_path).get("seqkit") or {}).get("config")
    if not saved:
        return argv
    fd, tmp = tempfile.mkstemp(prefix="seqkit-ckpt-config-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        fh.write(saved)
    return [argv[0], "--config", tmp, *argv[1:]]


def plugins_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="seqkit plugins", description="List installed seqkit plugins.")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    registry = _plugins.get_registry()
    rows = _plugins.describe(registry)
    if args.json:
        print(json.dumps({"plugins": rows, "skipped": registry.skipped}, indent=2))
        return 0
    for row in rows:
        version = f" {row['version']}" if row["version"] else ""
        dist = f" ({row['distribution']}{version})" if row["distribution"] else ""
        print(f"{row['name']}{dist}")
        for kind in ("heads", "datamodules", "encoders"):
            if row[kind]:
                print(f"  {kind}: {', '.join(row[kind])}")
    for name, why in sorted(registry.skipped.items()):
        print(f"{name} (skipped: {why})")
    return 0


USAGE_EXTRA = """
other commands:
  plugins [--json]      list installed plugins with their heads, data modules and encoders
"""


def main(argv: Optional[list[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["plugins"]:
            sys.exit(plugins_command(argv[1:]))
        _plugins.get_registry()
        argv = _config_from_checkpoint(argv)
        if argv[:1] in (["-h"], ["--help"]):
            print(USAGE_EXTRA.strip("\n"), file=sys.stderr)
        warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
        SeqkitCLI(args=argv)
    except SeqkitError as exc:
        sys.stderr.write(f"seqkit: error: {exc}\n")
        sys.exit(1)
    except FileNotFoundError as exc:
        sys.stderr.write(f"seqkit: error: file not found: {exc.filename or exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("seqkit: interrupted\n")
        sys.exit(130)
