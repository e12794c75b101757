"""Contract tests with seqkit.testing, and a test of the task (run: pytest)."""

from seqkit.testing import check_datamodule, check_head, check_plugin

from seqkit_example import plugin
from seqkit_example.data import DigitSumData
from seqkit_example.heads import DigitSumHead

SMALL = dict(num_train=64, num_val=32, num_test=32, loader={"batch_size": 8})


def test_plugin_registers_its_classes():
    info = check_plugin(plugin, name="example").plugins["example"]
    assert info.heads == ["DigitSumHead"] and info.datamodules == ["DigitSumData"]


def test_datamodule_contract():
    check_datamodule(DigitSumData, **SMALL)  # generated data: no training files to hide


def test_head_contract():
    check_head(DigitSumHead, DigitSumData(**SMALL))


def test_targets_are_digit_sums():
    dm = DigitSumData(**SMALL)
    dm.setup("fit")
    vocab = dm.spec.vocabs["digits"]
    for ids, total, digits in dm.train_set:
        assert total == sum(int(d) for d in vocab.decode(ids)) == sum(map(int, digits))
