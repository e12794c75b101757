"""seqkit-example-plugin: the sum of a sequence of digits, as a seqkit task plugin."""

from seqkit_example.data import DigitSumData
from seqkit_example.heads import DigitSumHead

__version__ = "0.1.0"
__all__ = ["DigitSumData", "DigitSumHead"]
