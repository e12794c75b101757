"""User-facing errors: one clear line, a non-zero exit, no traceback wall."""

from __future__ import annotations


class SeqkitError(Exception):
    """An error the user can fix (bad input file, bad config value); shown as one line by the CLI."""


class DataError(SeqkitError, ValueError):
    """Bad input data: the message names the file and line (or the setting) at fault."""
