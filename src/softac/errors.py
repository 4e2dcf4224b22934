"""User-facing errors: one clear line and a documented exit code (see DESIGN.md principle 8 and the
documentation's "What happens when things go wrong", docs/errors.md)."""

from __future__ import annotations


class SoftacError(Exception):
    """Bad input from the user: the message names what is wrong and what to do."""

    exit_code = 2


class WriteError(SoftacError):
    """A file of the run could not be written (disk full, read-only, quota): exit 2 like any other
    problem the user fixes outside softac; the trainer adds the last good checkpoint to the line."""


class DivergenceError(Exception):
    """Training produced a non-finite loss, parameter or α; the last good checkpoint is kept."""

    exit_code = 3


class EnvError(Exception):
    """The environment's own code raised an exception in ``reset``/``step``: a bug in the user's
    environment, not bad input to softac (exit 2) nor a diverged run (exit 3). Why a code of its
    own: a scheduler that retries bad-input failures never, and diverged runs with other settings,
    should neither retry nor re-tune a run whose environment crashes; it needs the environment
    fixed. The message names the environment, the step and the exception; ``--debug`` shows the
    environment's traceback (kept as ``__cause__``)."""

    exit_code = 4
