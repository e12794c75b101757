"""The plugin contract (v1): the hooks a seqkit plugin may implement.

A plugin is a Python package that declares an entry point in the ``seqkit`` group and implements
some of these hooks with the ``seqkit.hookimpl`` marker (pluggy). Hooks run once, when the CLI
starts, in every process (DDP re-runs the command in each rank): they only hand classes over and
must do no work - no data loading, no heavy imports.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "seqkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def seqkit_register_heads(register: Callable[[type], None]) -> None:
    """Register task heads (subclasses of :class:`seqkit.Head`).

    :param register: Call ``register(cls)`` once per head class. The class name becomes its YAML
        short name (``class_path: ManyToOneHead``); the full import path works too.

    Fires once when seqkit loads its plugins, before the command line is parsed.
    """


@hookspec
def seqkit_register_datamodules(register: Callable[[type], None]) -> None:
    """Register data modules (subclasses of :class:`seqkit.SeqDataModule`).

    :param register: Call ``register(cls)`` once per data module class; the class name is its YAML
        short name (``data: {class_path: MarkerTaskData}``).

    Fires once when seqkit loads its plugins, before the command line is parsed.
    """


@hookspec
def seqkit_register_encoders(register: Callable[[type], None]) -> None:
    """Register input encoders (subclasses of :class:`seqkit.InputEncoder`).

    :param register: Call ``register(cls)`` once per encoder class (for example a frame CNN for
        video); it can then be chosen with ``model.encoder.class_path``.

    Fires once when seqkit loads its plugins, before the command line is parsed.
    """
