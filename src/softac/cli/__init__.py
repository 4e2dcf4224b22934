"""The ``softac`` command: ``softac train|eval|plot|compare|sweep|export|bench|presets|suite``.
``train`` is in ``softac.cli.train``, the other commands in ``softac.cli.tools``, the flags generated
from the configs in ``softac.cli.args``.

Exit codes: 0 success, 2 bad input or a file that cannot be written (one line on stderr; ``--debug``
shows the traceback), 3 training diverged, 4 the environment's own code raised an exception,
130/143 interrupted by SIGINT/SIGTERM after saving a checkpoint (see docs/errors.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from softac import __version__
from softac.cli.tools import (
    cmd_bench,
    cmd_compare,
    cmd_eval,
    cmd_export,
    cmd_plot,
    cmd_presets,
    cmd_suite,
    cmd_sweep,
)
from softac.cli.train import cmd_train
from softac.errors import DivergenceError, EnvError, SoftacError
from softac.train import Interrupted

COMMANDS = {
    "train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "compare": cmd_compare, "sweep": cmd_sweep,
    "export": cmd_export, "bench": cmd_bench, "presets": cmd_presets,
    "suite": cmd_suite,
}  # fmt: skip


USAGE = f"""usage: softac COMMAND [options]    (softac COMMAND --help: every option of COMMAND)

softac {__version__}: Soft Actor-Critic and its family (SAC, TD3, DDPG, DQN, PPO, discrete SAC, CrossQ)
on PyTorch and Gymnasium.

commands:
  train     train an agent, or continue a run (--resume DIR)
  eval      evaluate a saved policy
  plot      draw learning curves of runs
  compare   compare runs across seeds (IQM, bootstrap intervals, probability of improvement)
  sweep     train environments × settings × seeds, or search hyper-parameters
  export    write the policy as ONNX or TorchScript, for use without softac
  bench     measure update and training speed
  presets   list the per-(algorithm, environment) presets that train applies
  suite     run a benchmark suite of algorithms × environments, and report it

first run (a few minutes on a laptop CPU):
  softac train --algo sac --env Pendulum-v1 --run-dir runs/first

options: -h, --help (this text), --version"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    # A bare `softac` prints this help: it used to start a 5-minute training run nobody asked for.
    command = argv[0] if argv else "--help"
    try:
        if command in ("-h", "--help", "--version"):
            print(USAGE if command != "--version" else f"softac {__version__}", flush=True)
            return 0
        if command not in COMMANDS:
            raise SoftacError(f"unknown command '{command}': use one of {', '.join(COMMANDS)}")
        return COMMANDS[command](argv[1:])
    except (SoftacError, DivergenceError, EnvError) as exc:
        if debug:
            raise
        print(f"softac: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"softac: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `softac | head -3`: the reader left. Python's own flush at exit would raise again, so stdout
        # points at /dev/null first; 141 is the status a SIGPIPE death gives (128 + 13), without a word.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        # Why: Ctrl-C outside the training loop's signal guard (building the agent, `softac eval`,
        # drawing the figure) printed a KeyboardInterrupt traceback; exit 130 with one line instead.
        if debug:
            raise
        print("softac: interrupted (nothing was saved by this command)", file=sys.stderr)
        return 130
