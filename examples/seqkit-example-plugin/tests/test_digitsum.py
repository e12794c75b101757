"""The example plugin's own contract tests, with seqkit.testing (run: pytest)."""

from seqkit.testing import check_datamodule, check_head, check_plugin

from seqkit_example import plugin
from seqkit_example.data import DigitSumData
from seqkit_example.heads import DigitSumHead

SMALL = dict(num_train=64, num_val=32, num_test=32, batch_size=8)


def test_plugin_registers_its_classes():
    registry = check_plugin(plugin, name="example")
    assert registry.names("heads") == ["DigitSumHead"]
    assert registry.names("datamodules") == ["DigitSumData"]


def test_datamodule_contract():
    check_datamodule(DigitSumData, **SMALL)


def test_head_contract():
    check_head(DigitSumHead, DigitSumData(**SMALL))


def test_targets_are_digit_sums():
    dm = DigitSumData(**SMALL)
    dm.setup("fit")
    vocab = dm.spec.vocabs["digits"]
    for ids, total in dm.train_set:
        assert total == sum(int(d) for d in vocab.decode(ids))
