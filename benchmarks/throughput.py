"""Throughput benchmark, softac vs Stable-Baselines3 (the same as `softac bench`).

    .venv/bin/python benchmarks/throughput.py --env HalfCheetah-v5 --algo sac --rounds 3
"""

import sys

from softac.bench import main

if __name__ == "__main__":
    sys.exit(main())
