"""Hook implementations (entry point ``example``): hand seqkit the classes, do nothing else.

Hooks run in every process when seqkit starts (DDP re-runs the command on each rank), so the
imports are inside the hooks and no data is touched here.
"""

from seqkit import hookimpl


@hookimpl
def seqkit_register_heads(register):
    from seqkit_example.heads import DigitSumHead

    register(DigitSumHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_example.data import DigitSumData

    register(DigitSumData)
