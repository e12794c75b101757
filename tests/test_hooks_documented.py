"""The plugin contract and its documentation cannot drift apart.

- every hookspec in ``seqkit/hookspecs.py`` has a section in docs/plugins.md with its exact
  signature and each of its parameters, and every hook documented there exists;
- every hookspec is exercised here by a plugin that implements it (a new hook without a test
  fails ``test_every_hook_is_exercised``);
- the public API listed in docs/plugins.md is exactly ``seqkit.__all__``, and the checks listed
  there are exactly ``seqkit.testing.__all__``.
"""

from __future__ import annotations

import inspect
import re
import types

import pytest
import torch

import seqkit
import seqkit.testing
from seqkit import hookspecs
from seqkit import plugins as seqkit_plugins_module
from seqkit.testing import isolated_registry, seqkit_plugins  # noqa: F401 - seqkit_plugins is a fixture

from conftest import ROOT

DOC = (ROOT / "docs" / "plugins.md").read_text()

HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if name.startswith("seqkit_") and callable(obj) and hasattr(obj, f"{hookspecs.PROJECT}_spec"))


def test_hookspecs_found():
    assert "seqkit_register_heads" in HOOKS, HOOKS


def _section(hook: str) -> str:
    m = re.search(rf"^#+ `{hook}\((.*?)\)`\n(.*?)(?=^#+ |\Z)", DOC, flags=re.M | re.S)
    assert m, f"docs/plugins.md has no section headed `{hook}(...)`: document every hook"
    return m.group(0)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_documented_with_its_signature_and_parameters(hook):
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    section = _section(hook)
    heading = section.splitlines()[0]
    assert f"`{hook}({', '.join(params)})`" in heading, f"docs heading {heading!r} does not match the hookspec's arguments {params}"
    for p in params:
        assert re.search(rf"^- `{p}`:", section, flags=re.M), f"docs for {hook} do not describe its argument {p!r}"
    summary = inspect.getdoc(getattr(hookspecs, hook)).splitlines()[0].replace(":class:", "").replace("``", "`")
    assert summary in section, f"docs for {hook} should open with the hookspec's summary line: {summary!r}"


def test_no_documented_hook_is_missing_from_hookspecs():
    documented = set(re.findall(r"^#+ `(seqkit_\w+)\(", DOC, flags=re.M))
    assert documented == set(HOOKS), f"documented but not hookspecs: {sorted(documented - set(HOOKS))}; " \
                                     f"hookspecs not documented: {sorted(set(HOOKS) - documented)}"


# -- each hook exercised by a plugin ------------------------------------------------------------
class DocHead(seqkit.Head):
    def __init__(self, spec, input_size):
        super().__init__(spec, input_size)
        self.out = torch.nn.Linear(input_size, 1)

    def loss(self, encoded, batch, stage, encode):
        return self.out(encoded.final).mean()


class DocData(seqkit.SeqDataModule):
    def build_spec(self):
        return seqkit.Spec(input_kind="features", input_size=2)

    def collate(self, examples):
        inputs, lengths = seqkit.pad(examples)
        return seqkit.Batch(inputs=inputs, lengths=lengths)


class DocEncoder(seqkit.InputEncoder):
    def __init__(self, spec):
        super().__init__(spec)
        self.output_size = spec.input_size

    def forward(self, inputs, lengths=None):
        return inputs


# hook -> (registry kind, class a plugin registers through it)
EXERCISES = {
    "seqkit_register_heads": ("heads", DocHead),
    "seqkit_register_datamodules": ("datamodules", DocData),
    "seqkit_register_encoders": ("encoders", DocEncoder),
}


def test_every_hook_is_exercised():
    missing = sorted(set(HOOKS) - set(EXERCISES))
    assert not missing, f"hooks with no test: {missing}; add them to EXERCISES in {__file__}"


@pytest.mark.parametrize("hook", sorted(EXERCISES))
def test_hook_registers_through_a_plugin(hook, seqkit_plugins):
    kind, cls = EXERCISES[hook]
    assert hook in HOOKS, f"{hook} is exercised here but is not a hookspec"

    def impl(register):
        register(cls)

    plugin = types.SimpleNamespace(**{hook: seqkit.hookimpl(impl)})
    registry = seqkit_plugins(("docplugin", plugin))
    assert cls.__name__ in registry.names(kind)
    assert registry.classes[kind][cls.__name__] is cls
    assert getattr(registry.plugins["docplugin"], kind) == [cls.__name__]
    assert seqkit_plugins_module.get_registry() is registry  # the CLI would see exactly this registry


def test_isolated_registry_restores_the_previous_one():
    before = seqkit_plugins_module.get_registry()
    plugin = types.SimpleNamespace(seqkit_register_heads=seqkit.hookimpl(lambda register: register(DocHead)))
    with isolated_registry(("docplugin", plugin)) as registry:
        assert seqkit_plugins_module.get_registry() is registry
        assert "DocHead" in registry.names("heads") and "classify" not in registry.plugins
    assert seqkit_plugins_module.get_registry() is before


def test_misspelt_hook_is_an_error():
    plugin = types.SimpleNamespace(seqkit_register_head=seqkit.hookimpl(lambda register: None))
    with pytest.raises(seqkit_plugins_module.PluginError, match="seqkit_register_head"):
        with isolated_registry(("typo", plugin)):
            pass


# -- the public API, pinned -----------------------------------------------------------------------
def test_public_api_list_in_docs_is_seqkit_all():
    m = re.search(r"<!-- public-api -->\n(.*?)<!-- /public-api -->", DOC, flags=re.S)
    assert m, "docs/plugins.md lost its <!-- public-api --> list"
    documented = re.findall(r"^- `(\w+)`", m.group(1), flags=re.M)
    assert len(documented) == len(set(documented)), "a name is listed twice"
    api = set(seqkit.__all__)
    assert set(documented) == api, (
        f"docs/plugins.md lists {sorted(set(documented) - api)} which seqkit.__all__ lacks, and lacks "
        f"{sorted(api - set(documented))}: a change to the public API must be documented (and is a contract change)"
    )
    for name in seqkit.__all__:
        assert hasattr(seqkit, name), f"seqkit.__all__ names {name!r}, which seqkit does not define"


def test_testing_api_list_in_docs_is_seqkit_testing_all():
    m = re.search(r"<!-- testing-api -->\n(.*?)<!-- /testing-api -->", DOC, flags=re.S)
    assert m, "docs/plugins.md lost its <!-- testing-api --> list"
    documented = re.findall(r"^- `(\w+)", m.group(1), flags=re.M)
    api = set(seqkit.testing.__all__)
    assert len(documented) == len(set(documented)) and set(documented) == api, (
        f"docs/plugins.md lists {sorted(set(documented) - api)} which seqkit.testing.__all__ lacks, and lacks "
        f"{sorted(api - set(documented))}"
    )
    for name in seqkit.testing.__all__:
        assert hasattr(seqkit.testing, name), f"seqkit.testing.__all__ names {name!r}, which it does not define"


# -- the complete small plugin in the docs runs -------------------------------------------------
def test_the_small_plugin_in_the_docs_passes_the_contract_checks(monkeypatch):
    import sys

    from seqkit.testing import check_datamodule, check_head

    m = re.search(r"```python\n(# seqkit_digits/task\.py\n.*?)```", DOC, flags=re.S)
    assert m, "docs/plugins.md lost its complete small plugin (# seqkit_digits/task.py)"
    module = types.ModuleType("seqkit_digits_doc")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(m.group(1), "docs/plugins.md", "exec"), module.__dict__)
    small = dict(num_train=64, num_val=32, loader={"batch_size": 8})
    check_datamodule(module.DigitsData, **small)
    report = check_head(module.DigitsHead, module.DigitsData(**small))
    assert "honours lengths" in report.passed and "predict: one record per example" in report.passed, report
