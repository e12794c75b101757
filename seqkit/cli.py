"""The ``seqkit`` command: LightningCLI (fit, validate, test, predict) plus ``seqkit plugins``.

Plugins are loaded before the parser is built, so every registered class resolves by its short
name in YAML. Errors a user can fix print as one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import logging
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
from seqkit.callbacks import AtomicCheckpointIO, PredictionWriter, SaveOnStop, default_callbacks
from seqkit.data import SeqDataModule
from seqkit.errors import SeqkitError
from seqkit.model import SequenceModel

SUBCOMMANDS = ("fit", "validate", "test", "predict")

# What the Trainer does unless a config says otherwise.
TRAINER_DEFAULTS: dict[str, Any] = {
    # seqkit's data modules shard their own length-bucketed batches across ranks.
    "use_distributed_sampler": False,
    "logger": lazy_instance(CSVLogger, save_dir="runs", name="seqkit"),
    "default_root_dir": "runs",
}

# config key -> (what its classes are called, how to list the valid choices)
_CLASS_KEYS = {
    "model.head": "heads",
    "model.encoder": "encoders",
    "model.rnn": "recurrent stacks",
    "data": "datamodules",
}


def _choices(kind: str) -> list[str]:
    if kind == "recurrent stacks":
        from seqkit.lstm import RecurrentStack

        found, todo = set(), list(RecurrentStack.__subclasses__())
        while todo:
            cls = todo.pop()
            todo += cls.__subclasses__()
            if not getattr(cls, "__abstractmethods__", None):
                found.add(cls.__name__)
        return sorted(found)
    return _plugins.get_registry().names(kind)


def _type_name(text: str) -> str:
    text = text.strip()
    literal = re.match(r"typing\.Literal\[(.*)\]$", text)
    if literal:
        return "one of: " + ", ".join(v.strip().strip("'\"") for v in literal.group(1).split(","))
    m = re.match(r"<class '(?:[\w.]+\.)?(\w+)'>", text)
    name = m.group(1) if m else text
    return "null" if name == "NoneType" else name


def _explain(message: str) -> str:
    """Turn jsonargparse's multi-line message into one line naming the YAML key, what was
    expected and, for an unknown class, the installed choices."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    key = ""
    for k in keys:  # nested keys: "model.head" then "hidden_size" -> model.head.init_args.hidden_size
        key = k if not key or k.startswith(key) else f"{key}.init_args.{k}"
    bad_class = re.search(r"Expected a dot import path string: (\S+)", message)
    if bad_class:
        kind = _CLASS_KEYS.get(key, "classes")
        names = ", ".join(_choices(kind)) or "(none installed)"
        return f"{key}: unknown class {bad_class.group(1)!r}; installed {kind}: {names}"
    option = re.search(r"Option '([^']+)' is not accepted", message)
    if option:
        cls = re.search(r"class_path='([\w.]+)'", message)
        valid = ""
        if cls:
            try:
                import importlib
                import inspect

                mod, _, name = cls.group(1).rpartition(".")
                params = list(inspect.signature(getattr(importlib.import_module(mod), name)).parameters)
                params = [p for p in params if p not in ("self", "spec", "input_size", "args", "kwargs")]
                valid = f"; {name} takes: {', '.join(params)}"
            except Exception:  # noqa: BLE001 - the hint is optional
                pass
        from dataclasses import fields

        from seqkit.data import Loader

        if option.group(1) in {f.name for f in fields(Loader)}:
            valid = f"; loader options moved to data.init_args.loader.{option.group(1)}"
        where = f"{key}: " if key else ""
        layer = _layer_of(f"{key}.{option.group(1)}" if key else option.group(1))
        return f"{where}unknown option {option.group(1)!r}{valid}" + (f" (set in {layer})" if layer else "")
    restricted = re.search(r"Not of type (\w+): ?(\S*) does not conform to restriction (v.+?)(?:\. Got value|$)",
                           message, flags=re.M)
    if key and restricted:
        rule = re.sub(r"\bv\s*", "", restricted.group(3).strip())
        given = restricted.group(2) or (re.findall(r"Given value: (.+)$", message, flags=re.M) or ["?"])[-1].strip()
        nested = re.match(r"NestedArg\(key=.*?, val='(.*)'\)$", given)
        given = nested.group(1) if nested else given
        optional = re.search(rf"Subtypes: \[[^\]]*\.{restricted.group(1)}'>, <class 'NoneType'>\]", message)
        null = " or null" if optional else ""
        return f"{key}: must be {rule}{null} ({restricted.group(1)}), got {given}"
    expected = [_type_name(t) for t in re.findall(r"Expected an? (.+?)(?:\. Got value|$)", message, flags=re.M)]
    expected = [e for e in expected if not e.startswith("path") and "dot import path" not in e]
    given = re.search(r"(?:Got value|Given value): (.+?)(?:\. Got value|$)", message, flags=re.M)
    if key and expected:
        got = f", got {given.group(1).strip()!r}" if given else ""
        return f"{key}: expected {' or '.join(dict.fromkeys(expected))}{got}"
    missing = re.search(r"File does not exist: '?([^']+)'?", message)
    if missing:
        return f"{key or 'config'}: file not found: {missing.group(1)}"
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


USAGE_EXTRA = """
other commands:
  seqkit plugins [--json]   list installed plugins with their heads, data modules and encoders
  seqkit new-plugin NAME    generate a plugin package (hooks, head, data module, config, tests)
  seqkit export --ckpt_path X [--format onnx] [--out DIR]
                            export a checkpoint to ONNX and check it against PyTorch in onnxruntime
  seqkit average CKPT... [--last K] --output OUT
                            average the weights of a run's last K checkpoints (or of the files named)
  seqkit trace --ckpt_path X (--input FILE | --split val) [--out DIR]
                            the LSTM X-ray: gate activations, cell state and saturation of real inputs
  --debug (or SEQKIT_DEBUG=1) show the full traceback of an error
  --config trainer/ddp_cpu  a trainer layer shipped with seqkit (bf16, ddp, ddp_cpu, fp16, fsdp, tensorboard)
"""


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
        kwargs.setdefault("parser_kwargs", {
            "default_env": False,
            "description": "seqkit: LSTM sequence models on PyTorch Lightning, configured in YAML.",
            "epilog": USAGE_EXTRA.strip("\n")
            + "\nexamples:\n  seqkit fit --config configs/classify.yaml\n"
            "  seqkit fit --config configs/classify.yaml --config configs/trainer/ddp.yaml\n"
            "  seqkit predict --ckpt_path runs/.../last.ckpt --prediction.output preds.csv",
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        })
        super().__init__(
            SequenceModel,
            SeqDataModule,
            subclass_mode_data=True,
            parser_class=SeqkitArgumentParser,
            args=args,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # the data module's spec is built only after the checkpoint's fitted state (if any) is
        # restored into it: an explicit step, so predicting never needs the training data
        parser.link_arguments("data", "model.spec", compute_fn=self._spec_of, apply_on="instantiate")
        parser.add_lightning_class_args(PredictionWriter, "prediction")

    def before_instantiate_classes(self) -> None:
        config = self.config.get(self.subcommand, self.config)
        ckpt_path = config.get("ckpt_path")
        if self.subcommand != "fit" and ckpt_path in ("last", "best"):
            # Lightning would look in this new run's (empty) folder and go on with untrained weights
            raise SeqkitError(
                f"--ckpt_path {ckpt_path}: a new {self.subcommand} run has no checkpoints of its own; "
                "give the checkpoint's path (runs/<name>/version_N/checkpoints/*.ckpt)"
            )
        if self.subcommand == "fit" and ckpt_path == "last":
            # Lightning would look only in this new run's folder and silently start from step 0
            ckpt_path = config["ckpt_path"] = _newest_last(config)
        is_file = bool(ckpt_path) and (os.path.sep in ckpt_path or ckpt_path.endswith(".ckpt"))
        self._checkpoint = _load_checkpoint(ckpt_path) if is_file else None
        try:
            self._resolved_yaml = self._parser(self.subcommand).dump(config, skip_none=False, skip_validation=True)
        except Exception:  # noqa: BLE001 - the dump is a convenience kept in checkpoints
            self._resolved_yaml = None

    @staticmethod
    def configure_optimizers(lightning_module, optimizer, lr_scheduler=None):
        # a scheduler that says so (seqkit.WarmupDecay) steps after every optimizer step, not
        # once per epoch as LightningCLI would step it
        if lr_scheduler is not None and getattr(lr_scheduler, "interval", "epoch") == "step":
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_scheduler, "interval": "step"}}
        return LightningCLI.configure_optimizers(lightning_module, optimizer, lr_scheduler)

    def _parse_ckpt_path(self) -> None:
        # Lightning reads the checkpoint here for saved hyperparameters, which seqkit never stores
        # (the resolved config travels as text): skip it, so the file is read once, by seqkit
        return None

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is False:
            raise SeqkitError("--weights_only false: seqkit never unpickles checkpoints (they can run code)")
        if "weights_only" in self._subcommand_method_arguments[subcommand]:
            kwargs["weights_only"] = True  # Lightning's own load of --ckpt_path, too
        return kwargs

    def _spec_of(self, datamodule: SeqDataModule):
        """``datamodule.spec``, after restoring the fitted state saved in the checkpoint."""
        ckpt = getattr(self, "_checkpoint", None)
        if ckpt is not None:
            state = ckpt.get(type(datamodule).__qualname__)
            if state is None and datamodule.fitted:
                saved = (ckpt.get("seqkit") or {}).get("data") or "another data module"
                raise SeqkitError(
                    f"--ckpt_path: this checkpoint holds no state for {type(datamodule).__name__} "
                    f"(it was trained with {saved}): it was trained for another task"
                )
            datamodule.load_state_dict(state or {})
        return datamodule.spec

    def before_fit(self) -> None:
        # model.init_from: read before the strategy wraps or shards the model, and never when this
        # fit resumes a checkpoint (its weights win)
        model = self.model
        if getattr(model, "init_from", None) and not self.config.get(self.subcommand, self.config).get("ckpt_path"):
            model.load_pretrained(model.init_from)

    def after_instantiate_classes(self) -> None:
        self.model.seqkit_config = self._resolved_yaml
        data_cls, head = type(self.datamodule), self.model.head
        self.model.seqkit_meta = {
            "head": f"{type(head).__module__}.{type(head).__qualname__}",
            "data": f"{data_cls.__module__}.{data_cls.__qualname__}",
        }
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io).__name__ == "TorchCheckpointIO":
            strategy.checkpoint_io = AtomicCheckpointIO()
        have = {type(c) for c in self.trainer.callbacks}
        self.trainer.callbacks.extend(c for c in default_callbacks() if type(c) not in have)
        if self.subcommand == "fit":
            self._select_best()

    def _select_best(self) -> None:
        """Model selection by default: where the config lists no ModelCheckpoint, Lightning's
        default one (the last epoch only) becomes one that keeps ``best.ckpt`` by the head's
        main validation metric (:meth:`seqkit.Head.monitor`) and ``last.ckpt``."""
        from lightning.pytorch.callbacks import ModelCheckpoint

        if self.trainer.limit_val_batches == 0:
            return  # no validation: nothing to select by (last.ckpt is the run's checkpoint)
        configured = self.config[self.subcommand].get("trainer", {}).get("callbacks") or []
        for cb in configured if isinstance(configured, list) else [configured]:
            path = str(getattr(cb, "class_path", cb))
            if "Checkpoint" in path.rsplit(".", 1)[-1]:
                return  # the config chose its own
        callbacks = self.trainer.callbacks
        default = [k for k, c in enumerate(callbacks) if type(c) is ModelCheckpoint]
        if len(default) != 1:
            return  # checkpointing off (enable_checkpointing: false)
        head = self.model.head
        monitor, mode = head.monitor() if hasattr(head, "monitor") else ("val_loss", "min")
        callbacks[default[0]] = ModelCheckpoint(monitor=monitor, mode=mode, filename="best", save_top_k=1,
                                                save_last=True, auto_insert_metric_name=False)


def _newest_last(config) -> str:
    """The newest ``last.ckpt`` of this config's run name: <save_dir>/<name>/version_*/checkpoints/."""
    logger = config.get("trainer", {}).get("logger") if hasattr(config, "get") else None
    init = getattr(logger, "init_args", None) if logger is not None and not isinstance(logger, bool) else None
    return _newest_checkpoint(getattr(init, "save_dir", None), getattr(init, "name", None), "last")


def _newest_checkpoint(save_dir, name, which: str) -> str:
    """``which`` ("best" or "last") checkpoint of the newest run (highest version_N) of run
    ``name`` under ``save_dir``: <save_dir>/<name>/version_N/checkpoints/<which>.ckpt."""
    save_dir, name = os.fspath(save_dir or "runs"), name or "seqkit"
    root = os.path.join(save_dir, name)
    runs = []
    for folder in glob.glob(os.path.join(glob.escape(root), "version_*", "checkpoints")):
        version = os.path.basename(os.path.dirname(folder))[len("version_"):]
        if glob.glob(os.path.join(glob.escape(folder), "*.ckpt")):
            runs.append((int(version) if version.isdigit() else -1, os.path.getmtime(folder), folder))
    if not runs:
        raise SeqkitError(f"--ckpt_path {which}: no {which}.ckpt of run {name!r} under {root}/version_*/checkpoints/")
    folder = max(runs)[2]
    path = os.path.join(folder, f"{which}.ckpt")
    if os.path.isfile(path):
        return path
    if which == "best":
        raise SeqkitError(f"--ckpt_path best: {folder} has no best.ckpt (that run monitored no validation metric: "
                          "no validation data, or its config chose its own ModelCheckpoint); give a path, or "
                          "--ckpt_path last")
    raise SeqkitError(f"--ckpt_path last: {folder} has no last.ckpt; give a checkpoint's path")


def _run_name(argv: list[str]) -> tuple[Optional[str], Optional[str]]:
    """The logger's save_dir and name as the --config layers and flags of ``argv`` set them
    (later ones win), before LightningCLI parses anything."""
    import yaml

    save_dir = name = None
    for i, a in enumerate(argv):
        value = a.split("=", 1)[1] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
        if a.split("=", 1)[0] in ("--config", "-c"):
            path = value if os.path.exists(value) else os.path.join(
                PACKAGED, value if value.endswith((".yaml", ".yml")) else f"{value}.yaml")
            try:
                with open(path) as fh:
                    doc = yaml.safe_load(fh) or {}
            except (OSError, yaml.YAMLError):
                continue  # _config_layers reports it
            logger = (doc.get("trainer") or {}).get("logger") if isinstance(doc, dict) else None
            init = logger.get("init_args") if isinstance(logger, dict) else None
            if isinstance(init, dict):
                save_dir, name = init.get("save_dir", save_dir), init.get("name", name)
        elif a.split("=", 1)[0] == "--trainer.logger.init_args.save_dir":
            save_dir = value
        elif a.split("=", 1)[0] == "--trainer.logger.init_args.name":
            name = value
    return save_dir, name


_CHECKPOINTS: dict[str, dict] = {}  # read once per command


def _load_checkpoint(path: str) -> dict:
    if path in _CHECKPOINTS:
        return _CHECKPOINTS[path]
    from seqkit.checkpoint import read_checkpoint

    _CHECKPOINTS[path] = read_checkpoint(path)
    return _CHECKPOINTS[path]


def _config_from_checkpoint(argv: list[str]) -> list[str]:
    """``seqkit predict --ckpt_path X``: the config saved in the checkpoint comes first, so no
    --config is needed; --config layers given too (a trainer layer, a task config) override it."""
    if not argv or argv[0] not in ("validate", "test", "predict"):
        return argv
    ckpt_path = None
    for i, a in enumerate(argv):
        if a == "--ckpt_path" and i + 1 < len(argv):
            ckpt_path = argv[i + 1]
        elif a.startswith("--ckpt_path="):
            ckpt_path = a.split("=", 1)[1]
    if not ckpt_path:
        return argv
    if ckpt_path in ("last", "best"):
        # Lightning would look in this new run's (empty) folder and go on with untrained weights:
        # resolve it to the newest training run of the config's name instead
        if not any(x.split("=", 1)[0] in ("--config", "-c") for x in argv):
            raise SeqkitError(
                f"--ckpt_path {ckpt_path}: give the task's --config too (its trainer.logger names the run: "
                "runs/<name>/version_N/checkpoints/), or the checkpoint's path"
            )
        resolved = _newest_checkpoint(*_run_name(argv), ckpt_path)
        sys.stderr.write(f"seqkit: --ckpt_path {ckpt_path} is {resolved}\n")
        argv = [resolved if x == ckpt_path and argv[i - 1] == "--ckpt_path" else
                f"--ckpt_path={resolved}" if x == f"--ckpt_path={ckpt_path}" else x for i, x in enumerate(argv)]
        ckpt_path = resolved
    saved = (_load_checkpoint(ckpt_path).get("seqkit") or {}).get("config")
    if not saved:
        if not any(a == "--config" or a.startswith("--config=") for a in argv):
            raise SeqkitError(
                f"--ckpt_path: {ckpt_path} holds no saved config (ckpt['seqkit']['config']; seqkit fit writes one); "
                "pass the task's --config too"
            )
        return argv
    fd, tmp = tempfile.mkstemp(prefix="seqkit-ckpt-config-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        fh.write(saved)
    atexit.register(lambda: os.path.exists(tmp) and os.unlink(tmp))
    _LAYERS[tmp] = f"the config saved in {ckpt_path}"
    return [argv[0], "--config", tmp, *argv[1:]]


PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_LAYERS: dict[str, str] = {}  # config file given -> how to name it in errors


def _config_layers(argv: list[str]) -> list[str]:
    """Check every --config layer before LightningCLI sees it: a name like ``trainer/ddp_cpu``
    that is no file resolves to the layer shipped with seqkit; YAML syntax errors name the file
    and line; an empty layer is dropped (a no-op)."""
    import yaml

    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-c", "--config") and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif a.startswith("--config="):
            value, i = a.split("=", 1)[1], i + 1
        else:
            out.append(a)
            i += 1
            continue
        path = value
        if not os.path.exists(path):
            shipped = os.path.join(PACKAGED, value if value.endswith((".yaml", ".yml")) else f"{value}.yaml")
            if os.path.exists(shipped):
                path = shipped
            else:
                names = sorted(f"trainer/{n[:-5]}" for n in os.listdir(os.path.join(PACKAGED, "trainer")))
                raise SeqkitError(f"--config: file not found: {value} (layers shipped with seqkit: {', '.join(names)})")
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{path}:{mark.line + 1}" if mark is not None else path
            raise SeqkitError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SeqkitError(f"--config: cannot read {path}: {exc}") from None
        if loaded is None:
            continue  # an empty layer changes nothing
        if not isinstance(loaded, dict):
            raise SeqkitError(f"{path}: a config must be a mapping of keys (model:, data:, trainer: ...), "
                              f"got a {type(loaded).__name__}")
        _LAYERS.setdefault(path, path)
        out += ["--config", path]
    return out


def _layer_of(key: str) -> str | None:
    """The last --config layer that sets ``key`` (dotted), for errors about it."""
    import yaml

    parts = [p for p in key.split(".") if p != "init_args"]
    found = None
    for path, name in _LAYERS.items():
        try:
            with open(path, encoding="utf-8") as fh:
                node = yaml.safe_load(fh)
        except Exception:  # noqa: BLE001 - a hint only
            continue
        for part in parts:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, dict) and isinstance(node.get("init_args"), dict) and part in node["init_args"]:
                node = node["init_args"][part]
            else:
                break
        else:
            found = name
    return found


# Where a ValueError or MisconfigurationException is the user's setting, not a bug: Lightning's
# accelerator/strategy/precision checks and torch's optimizer argument checks.
_SETTING_MODULES = ("lightning.pytorch.trainer.connectors", "lightning.fabric.connector", "lightning.pytorch.strategies",
                    "lightning.pytorch.accelerators", "lightning.fabric.accelerators", "lightning.pytorch.plugins.precision",
                    "torch.optim")


def _raised_in(exc: BaseException) -> str:
    tb = exc.__traceback__
    module = ""
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        tb = tb.tb_next
    return module


def _state_dict_mismatch(text: str) -> str:
    """One line for torch's "Error(s) in loading state_dict": the checkpoint's weights do not fit
    the model this config builds (an option that sets a size was changed after training)."""
    size = re.search(r"size mismatch for ([\w.]+): copying a param with shape torch.Size\(\[([\d, ]*)\]\) from "
                     r"checkpoint, the shape in current model is torch.Size\(\[([\d, ]*)\]\)", text)
    if size:
        key, saved, here = size.groups()
        what = f"{key} is ({saved}) in the checkpoint but ({here}) in the model this config builds"
    else:
        keys = re.search(r'(Missing|Unexpected) key\(s\) in state_dict: "([^"]+)"', text)
        if keys is None:
            what = "its weights differ in layout"
        elif keys.group(1) == "Missing":
            what = f"the model this config builds needs weights it lacks, such as {keys.group(2)}"
        else:
            what = f"it has weights the model this config builds lacks, such as {keys.group(2)}"
    return (f"--ckpt_path: the checkpoint does not fit the model: {what}; options that set sizes (model.*, "
            "data.init_args.horizon for a direct forecast, ...) must stay as they were in training")


def _user_error(exc: BaseException) -> str | None:
    """The message of the SeqkitError behind ``exc`` (jsonargparse and Lightning wrap errors
    raised while classes are instantiated), a setting Lightning or torch refused, or None for a
    genuine bug."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SeqkitError):
            return str(exc)
        if isinstance(exc, FileNotFoundError) and exc.filename:
            return f"file not found: {exc.filename}"
        if isinstance(exc, RuntimeError) and "Error(s) in loading state_dict" in str(exc):
            return _state_dict_mismatch(str(exc))
        if isinstance(exc, (ValueError, MisconfigurationException, RuntimeError)):
            where = _raised_in(exc)
            if where.startswith(_SETTING_MODULES) or (isinstance(exc, MisconfigurationException) and "GPU" in str(exc)):
                prefix = "optimizer: " if where.startswith("torch.optim") else "trainer: "
                text = " ".join(str(exc).split())
                if "gpu backend" in text.lower() or "cuda" in text.lower() and "not available" in text.lower():
                    text = (f"this config needs a GPU and none was found ({text}); on CPU use "
                            "--config trainer/ddp_cpu or --trainer.accelerator=cpu")
                return prefix + text
        exc = exc.__cause__ or exc.__context__
    return None


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


def _show_plugin_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, _plugins.PluginLoadWarning):
        (file or sys.stderr).write(f"{message}\n")
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


class _NoVendorTips(logging.Filter):
    """Drops Lightning's "💡 Tip: try installing ..." advertisements for its cloud services."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def _quiet_vendor_tips() -> None:
    for name in ("lightning_utilities.core.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoVendorTips) for f in log.filters):  # main() may run many times in one process
            log.addFilter(_NoVendorTips())


def keep_freed_memory() -> bool:
    """Keep the memory a training step frees for the next step, instead of giving it back to the
    kernel and faulting it in again.

    glibc serves blocks above its mmap threshold (128 KB at first, moved up to 32 MB as it sees
    them freed) with fresh mappings and returns freed heap tops above its trim threshold to the
    kernel: every step's activations were new pages. A 120-step video fit spent 2.9 s of its
    23 s CPU in the kernel with 1.6 M page faults; with the thresholds raised, 0.8 s and 0.25 M
    (``python benchmarks/video_memory.py``), at the same peak resident memory. Linux with
    glibc only; ``SEQKIT_MALLOC=system`` keeps glibc's defaults. Returns whether it applied."""
    if os.environ.get("SEQKIT_MALLOC", "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # musl or another C library: nothing to tune
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    if not mallopt(M_MMAP_THRESHOLD, 1 << 30):
        mallopt(M_MMAP_THRESHOLD, 32 << 20)  # older glibc: at most HEAP_MAX_SIZE / 2
    return bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


def main(argv: Optional[list[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SEQKIT_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    argv = [a for a in argv if a != "--debug"]
    warnings.showwarning = _show_plugin_warning
    try:
        if argv[:1] == ["plugins"]:
            sys.exit(plugins_command(argv[1:]))
        if argv[:1] == ["new-plugin"]:
            from seqkit.scaffold import new_plugin_command

            sys.exit(new_plugin_command(argv[1:]))
        if argv[:1] == ["export"]:
            from seqkit.export import export_command

            sys.exit(export_command(argv[1:]))
        if argv[:1] == ["average"]:
            from seqkit.average import average_command

            sys.exit(average_command(argv[1:]))
        if argv[:1] == ["trace"]:
            from seqkit.xray import trace_command

            sys.exit(trace_command(argv[1:]))
        _plugins.get_registry()
        keep_freed_memory()
        argv = _config_layers(_config_from_checkpoint(argv))
        warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
        # seqkit's LengthBucketSampler returns every index when predicting (writers dedupe DDP padding)
        warnings.filterwarnings("ignore", message=".*custom batch sampler `LengthBucketSampler` for prediction.*")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
        # the optimizer: section replaces SequenceModel's default Adam, as documented
        warnings.filterwarnings("ignore", message=".*configure_optimizers` will be overridden by.*")
        # seqkit's checkpoints are read for weights; the callbacks that wrote them need not be rebuilt
        warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be provided.*")
        _quiet_vendor_tips()
        SeqkitCLI(args=argv)
    except SystemExit as exc:
        if SaveOnStop.interrupted:  # Lightning exits 1 after its clean Ctrl-C shutdown
            sys.stderr.write("seqkit: interrupted (last.ckpt saved)\n")
            sys.exit(130)
        raise exc
    except Exception as exc:  # noqa: BLE001
        user_error = None if debug else _user_error(exc)
        if user_error is None:
            raise
        sys.stderr.write(f"seqkit: error: {user_error}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("seqkit: interrupted\n")
        sys.exit(130)
