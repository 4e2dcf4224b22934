"""``python -m softac.suite.child PARENT_PID MODULE ARGS...``: run ``python -m MODULE ARGS...`` as a
cell of a suite, ended when the suite process dies.

Why: the suite starts each cell in a process group of its own, so that a signal to the suite's
group (Ctrl-C in a terminal, a scheduler's ``kill -TERM -- -PGID``) reaches the cell once, through
the suite, and not twice (a second signal makes ``softac train`` exit at once, without its
checkpoint). A cell outside the suite's group would outlive a suite killed with SIGKILL, training on,
orphaned, and holding its run's lock; Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``)
kills it with the suite instead, as a lost machine would: ``--resume`` continues it exactly from its
newest checkpoint. (Not SIGTERM: its checkpoint would be taken mid-episode, and a resume from
there is correct but not bit-identical.) Elsewhere the cell is started in the suite's group."""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main() -> None:
    parent, module = int(sys.argv[1]), sys.argv[2]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the suite died before the line above took effect
        sys.exit(128 + int(signal.SIGKILL))
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
