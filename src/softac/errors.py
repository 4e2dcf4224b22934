"""User-facing errors: one clear line, exit code 2 (see DESIGN.md principle 8)."""

from __future__ import annotations


class SoftacError(Exception):
    """Bad input from the user: the message names what is wrong and what to do."""

    exit_code = 2


class DivergenceError(Exception):
    """Training produced a non-finite loss, parameter or α; the last good checkpoint is kept."""

    exit_code = 3
