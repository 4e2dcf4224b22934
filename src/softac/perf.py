"""Process-level settings that make small-network training faster on the CPU."""

from __future__ import annotations

import ctypes
import sys

_done = False


def tune_allocator() -> None:
    import os
    if os.environ.get("SOFTAC_NO_MALLOPT"): return
    """Stop glibc from returning freed activation buffers to the OS after every step.

    An update allocates and frees the same few hundred-kB tensors thousands of times a second.
    glibc serves blocks above its mmap threshold with mmap/munmap, so every step page-faults
    them in again. Raising the threshold and the trim threshold keeps those pages in the heap.
    """
    global _done
    if _done or not sys.platform.startswith("linux"):
        return
    _done = True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum on 64-bit
    libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
