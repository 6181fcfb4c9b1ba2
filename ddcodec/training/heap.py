"""Keep freed memory in the process heap, so that the fitting loop reuses its activations' memory.

Each fitting iteration allocates and frees the same few tensors of tens of MB. glibc serves blocks that large with a
fresh mmap and unmaps them when freed, so every iteration page-faults (and the kernel zeroes) all of its activations
again: on a 2-core CPU that was 30 % of a 768×512 iteration, and a copy into a new tensor ran 5× slower than into
an existing one. With mmap off for the heap and trimming only above 2 GiB, freed blocks go back to malloc's free
lists and the next iteration takes them as they are. The process then keeps its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import functools

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


@functools.cache
def retain_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from its heap and not give freed memory back; once per process.
    False (and nothing changed) where the C library has no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
