"""Process-level settings that make small-network training faster on the CPU."""

from __future__ import annotations

import ctypes
import sys

_done = False


def tune_allocator() -> None:
    """Stop glibc from handing freed activation buffers back to the OS between updates.

    An update allocates and frees the same few hundred-kB tensors thousands of times a second.
    glibc serves blocks above its (adaptive) mmap threshold with mmap/munmap and trims the heap
    top, so some of them are page-faulted in again on every step. Fixing the mmap threshold at
    its maximum and raising the trim threshold keeps those pages in the heap (measured on
    HalfCheetah's SAC update: 4.5 → 1.3 minor page faults per update).
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
