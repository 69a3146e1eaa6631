"""conmon's control fifo (`<bundle>/ctl`): one line per message, `<kind> <height> <width>`.

Opened without blocking so a conmon that is gone turns into an OSError instead of a hang on open().
"""

import os
from pathlib import Path

RESIZE = 1
REOPEN_LOG = 2


def send(bundle: Path, kind: int, height: int = 0, width: int = 0) -> None:
    """Write one message; raises OSError (ENXIO when no conmon reads the fifo)."""
    fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, f"{kind} {height} {width}\n".encode())
    finally:
        os.close(fd)
