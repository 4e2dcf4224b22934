"""Bytes per transition of the pixel replay storage (``softac.data.frames``) against the memory goal:
1M transitions of 84×84×3 frames stacked 3 deep at most 1.1× one frame per transition, against
storing each stack (3×: SB3 with ``optimize_memory_usage``, DrQ-v2) and storing s and s' stacks
(6×: SB3's default).

    PYTHONPATH=src .venv/bin/python benchmarks/pixel_memory.py

The figure comes from the tensors a ``FrameBuffer`` of that size really allocates (``nbytes``;
``torch.empty`` reserves the pages without touching them, so nothing is resident). Where the
machine refuses even the reservation, it says so and prints the formula's figure instead.
"""

from __future__ import annotations

import argparse
import math

from softac.data.frames import FrameBuffer, frame_buffer_bytes
from softac.memory import human


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--shape", type=int, nargs=3, default=(84, 84, 3), help="one frame, H W C")
    parser.add_argument("--stack", type=int, default=3)
    args = parser.parse_args()
    n, shape, k = args.transitions, tuple(args.shape), args.stack
    frame = math.prod(shape)
    try:
        buf = FrameBuffer(1, n, shape, stack=k)
        total, source = buf.frames.nbytes + buf.index.nbytes, "allocated tensors' nbytes"
        assert total == frame_buffer_bytes(1, n, shape, k)
        del buf
    except RuntimeError as exc:  # the reservation alone can exceed what the kernel grants
        total, source = frame_buffer_bytes(1, n, shape, k), f"formula (allocation refused: {exc})"
    per = total / n
    print(f"{n:,} transitions of {'x'.join(map(str, shape))} uint8 frames stacked {k}; one frame = {frame:,} B")
    print(f"source: {source}")
    print(f"{'layout':<44} {'B/transition':>13} {'x one frame':>12} {'total':>10}")
    rows = [
        ("softac FrameBuffer (frames once + indices)", per),
        ("stacks stored (SB3 optimize_memory_usage)", k * frame),
        ("s and s' stacks (SB3 default)", 2 * k * frame),
        ("s and s' stacks as float32", 4 * 2 * k * frame),
    ]
    for name, b in rows:
        print(f"{name:<44} {b:>13,.0f} {b / frame:>12.3f} {human(b * n):>10}")
    verdict = "meets" if per <= 1.1 * frame else "MISSES"
    print(f"goal ≤ 1.1× one frame per transition: {per / frame:.3f}× {verdict} it ({total / 2**30:.1f} GiB in all)")


if __name__ == "__main__":
    main()
