"""Range-checked argument types (jsonargparse restricted types).

Annotating a constructor argument with one of these makes LightningCLI refuse a bad value while
parsing, before anything is built, with one line that names the YAML key and the valid range
(``model.rnn.init_args.hidden_size: must be > 0, got 0``); ``--help`` shows the type name. The
values are plain ``int``/``float`` subclasses, so code that builds seqkit objects in Python is
unaffected; constructors keep their own checks for that path.
"""

from __future__ import annotations

from jsonargparse.typing import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

#: A dropout probability: 0 <= p < 1.
Probability = restricted_number_type("Probability", float, [(">=", 0), ("<", 1)], join="and")

__all__ = ["NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "Probability"]
