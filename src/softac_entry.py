"""The ``softac`` console script's entry point, outside the ``softac`` package on purpose.

Why: ``softac/__init__.py`` imports the algorithms and so torch (≈1.5 s). A console script that
named ``softac.cli:main`` imported all of it before ``main``'s own ``try`` could catch anything,
so a Ctrl-C during start-up printed a KeyboardInterrupt traceback. Any module
inside the package would be imported only after the package's ``__init__``, hence a top-level
module whose import costs nothing and which imports softac inside a ``try``.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        # Imported here, not at the top: this import IS the start-up that must be interruptible.
        from softac.cli import main as cli_main
    except KeyboardInterrupt:
        if "--debug" in sys.argv:
            raise
        print("softac: interrupted while starting (nothing was done)", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
