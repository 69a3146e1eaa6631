"""One glibc malloc arena for the whole daemon, so what a pull frees is reused instead of kept.

glibc gives each thread that allocates under contention an arena of its own (up to 8 per core). A pull's
layer threads each fill one with MiB-sized download, hash and decompression buffers; freed, those stay in
that thread's arena, cut up around what is still live, and the next pull's threads land in other arenas.
Measured here (docs/bench.md, "Idle cost"): six pulls of one 32 MiB image left the daemon at 70-75 MiB
(82 at worst); with one arena 61.0-61.2, the same CPU for the pulls, the idle daemon unchanged. Python
allocates its small objects itself and holds the GIL for most of the rest, so threads rarely wait for
the arena's lock. Fixing M_MMAP_THRESHOLD instead (no raising of it after a big free) kept 62 MiB too but
cost 40% more CPU per pull in page faults, and malloc_trim after each pull kept 75-81 MiB.
"""

import ctypes
import os

M_ARENA_MAX = -8  # glibc's <malloc.h>
# glibc's environment tunable for the same setting: an administrator's choice wins over ours.
ENV_OVERRIDE = "MALLOC_ARENA_MAX"


def use_one_arena() -> bool:
    """Set at start-up, before the threads; False where the environment sets it or libc has no mallopt."""
    if ENV_OVERRIDE in os.environ:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the libc the interpreter runs on
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, 1) == 1)
