"""Plugin loading and the class registry.

Plugins are found through the ``seqkit`` entry-point group and managed by pluggy. Each entry point
is imported on its own: one that fails to import is a warning naming it, and everything else keeps
working (set ``SEQKIT_STRICT_PLUGINS=1`` to make it an error). Hook names are checked
(``check_pending``), so a misspelt hook fails loudly. Registered classes are validated when they
are registered; the class name is the YAML short name and must be unique across plugins.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable, Iterable

import pluggy

from seqkit import hookspecs
from seqkit.errors import SeqkitError

ENTRY_POINT_GROUP = hookspecs.PROJECT
STRICT_ENV = "SEQKIT_STRICT_PLUGINS"

# hook name -> (kind shown to users, name of the base class in seqkit's public API)
KINDS = {
    "seqkit_register_heads": ("heads", "Head"),
    "seqkit_register_datamodules": ("datamodules", "SeqDataModule"),
    "seqkit_register_encoders": ("encoders", "InputEncoder"),
}


class PluginError(SeqkitError):
    """A plugin broke the contract (duplicate class name, wrong base class, misspelt hook)."""


class PluginLoadWarning(UserWarning):
    """A plugin could not be imported and was skipped."""


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    heads: list[str] = field(default_factory=list)
    datamodules: list[str] = field(default_factory=list)
    encoders: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "heads": sorted(self.heads),
            "datamodules": sorted(self.datamodules),
            "encoders": sorted(self.encoders),
        }


class Registry:
    """Classes registered by plugins, by kind and short name."""

    def __init__(self) -> None:
        self.classes: dict[str, dict[str, type]] = {kind: {} for kind, _ in KINDS.values()}
        self.owner: dict[str, str] = {}  # short name -> plugin name
        self.plugins: dict[str, PluginInfo] = {}
        self.skipped: dict[str, str] = {}  # plugin name -> why it was skipped

    def names(self, kind: str) -> list[str]:
        return sorted(self.classes[kind])

    def register(self, plugin: str, kind: str, base: type, cls: object) -> None:
        where = f"plugin {plugin!r}"
        if not inspect.isclass(cls):
            raise PluginError(f"{where} registered {cls!r}, which is not a class")
        if not issubclass(cls, base):
            raise PluginError(
                f"{where} registered {cls.__qualname__} as one of the {kind}, "
                f"but it does not subclass seqkit.{base.__name__}"
            )
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise PluginError(f"{where} registered {cls.__qualname__}, which is abstract (missing: {missing})")
        if "<locals>" in cls.__qualname__ or _import_public(cls) is not cls:
            raise PluginError(
                f"{where} registered {cls.__module__}.{cls.__qualname__}, which cannot be imported "
                "by that path: define it at the top level of an importable module"
            )
        name = cls.__name__
        if name in self.owner:
            other = self.owner[name]
            if self._lookup(name) is cls:
                return  # the same class registered twice by one plugin is harmless
            raise PluginError(
                f"class name {name!r} is registered by two plugins: {other!r} "
                f"({_path(self._lookup(name))}) and {plugin!r} ({_path(cls)}); "
                "YAML short names must be unique - rename one class or uninstall one plugin"
            )
        self.classes[kind][name] = cls
        self.owner[name] = plugin
        getattr(self.plugins.setdefault(plugin, PluginInfo(plugin)), kind).append(name)

    def _lookup(self, name: str) -> type | None:
        for kind_classes in self.classes.values():
            if name in kind_classes:
                return kind_classes[name]
        return None


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_public(cls: type) -> object:
    try:
        module = importlib.import_module(cls.__module__)
    except Exception:  # noqa: BLE001 - any failure means "not importable"
        return None
    obj: object = module
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def load_entry_points(pm: pluggy.PluginManager, registry: Registry, group: str = ENTRY_POINT_GROUP) -> None:
    """Import and register every entry point of ``group``, one at a time, in name order."""
    seen: set[str] = set()
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        if ep.name in seen or pm.has_plugin(ep.name):
            continue
        seen.add(ep.name)
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            reason = f"{type(exc).__name__}: {exc}"
            if _strict():
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {reason}") from exc
            registry.skipped[ep.name] = reason
            warnings.warn(
                f"seqkit: skipping plugin {ep.name!r} ({ep.value}): it failed to import ({reason}). "
                f"Set {STRICT_ENV}=1 to make this an error.",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        pm.register(plugin, name=ep.name)
        info = registry.plugins.setdefault(ep.name, PluginInfo(ep.name))
        if ep.dist is not None:
            info.distribution, info.version = ep.dist.name, ep.dist.version


def api_bases() -> dict:
    """The base classes plugins register against, by name."""
    from seqkit.data import SeqDataModule
    from seqkit.encoders import InputEncoder
    from seqkit.head import Head

    return {"Head": Head, "SeqDataModule": SeqDataModule, "InputEncoder": InputEncoder}


def collect(pm: pluggy.PluginManager, registry: Registry) -> None:
    """Validate hook names, then call each plugin's register hooks, in plugin-name order. A
    plugin whose hook raises is skipped with a warning naming it (an error with
    SEQKIT_STRICT_PLUGINS=1); the classes it had registered are taken back."""

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"{exc} (known hooks: {', '.join(sorted(KINDS))}); a misspelt hook name would be ignored silently"
        ) from exc
    for hook_name, (kind, base_name) in KINDS.items():
        base = api_bases()[base_name]
        hook = getattr(pm.hook, hook_name)
        for impl in sorted(hook.get_hookimpls(), key=lambda i: i.plugin_name):
            plugin = impl.plugin_name
            registry.plugins.setdefault(plugin, PluginInfo(plugin))

            if plugin in registry.skipped:
                continue

            def register(cls: object, _plugin: str = plugin, _kind: str = kind, _base: type = base) -> None:
                registry.register(_plugin, _kind, _base, cls)

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the CLI down
                _skip_plugin(pm, registry, plugin, hook_name, exc)


def _skip_plugin(pm: pluggy.PluginManager, registry: Registry, plugin: str, hook_name: str, exc: Exception) -> None:
    entry = next((f"{ep.name} = {ep.value}" for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == plugin), plugin)
    reason = f"{type(exc).__name__}: {exc}"
    if _strict():
        raise PluginError(f"plugin {plugin!r} (entry point {entry}): {hook_name} raised {reason}") from exc
    for kind_classes in registry.classes.values():
        for name in [n for n, _ in kind_classes.items() if registry.owner.get(n) == plugin]:
            del kind_classes[name]
            del registry.owner[name]
    registry.plugins.pop(plugin, None)
    registry.skipped[plugin] = f"{hook_name} raised {reason}"
    warnings.warn(f"seqkit: skipping plugin {plugin!r} (entry point {entry}): its {hook_name} raised {reason}. "
                  f"Set {STRICT_ENV}=1 to make this an error.", PluginLoadWarning, stacklevel=2)


_REGISTRY: Registry | None = None


def get_registry(extra_plugins: Iterable[tuple[str, object]] = (), reload: bool = False) -> Registry:
    """Load the built-in plugin and every installed plugin once per process; return the registry."""
    global _REGISTRY
    if _REGISTRY is not None and not reload and not extra_plugins:
        return _REGISTRY
    pm = new_plugin_manager()
    registry = Registry()
    from seqkit import _builtin  # noqa: F401 - the module, not the package's names

    pm.register(_builtin, name="seqkit")
    info = registry.plugins.setdefault("seqkit", PluginInfo("seqkit"))
    from seqkit._version import __version__

    info.distribution, info.version = "seqkit", __version__
    for name, obj in extra_plugins:
        pm.register(obj, name=name)
    load_entry_points(pm, registry)
    collect(pm, registry)
    _REGISTRY = registry
    return registry


def describe(registry: Registry) -> list[dict]:
    return [registry.plugins[name].as_dict() for name in sorted(registry.plugins)]


Register = Callable[[type], None]
