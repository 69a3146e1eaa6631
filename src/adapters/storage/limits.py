"""What one layer may take while it is unpacked (kept apart from streams.py, which loads the decompressors:
the composition root builds these at start-up)."""

from dataclasses import dataclass

# The expansion ratio is judged only past this many uncompressed bytes: small layers of empty files and
# tar padding compress a thousandfold and harm no one.
RATIO_FLOOR = 64 * 1024 * 1024


@dataclass(frozen=True)
class UnpackLimits:
    """What one layer may take: bytes on disk (a sparse file counts at its full size, as it is written out),
    times its compressed size, tar entries, and the free space and inodes it must leave.
    Each limit names its config key in the error (docs/security.md, "Limits")."""

    max_layer_bytes: int = 8 * 1024**3
    max_ratio: int = 100
    min_free_bytes: int = 256 * 1024 * 1024
    min_free_inodes: int = 64 * 1024
    max_entries: int = 1_000_000
