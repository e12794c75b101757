"""seqkit-example-plugin: a seqkit task plugin, a head and a data module (see README.md)."""

from seqkit_example.data import DigitSumData
from seqkit_example.heads import DigitSumHead

__version__ = "0.1.0"
__all__ = ["DigitSumData", "DigitSumHead"]
