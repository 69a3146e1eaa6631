"""The daemon's own directories (state root, run dir) are root's alone.

Specs, state records and exec process files hold containers' environments, which carry secrets; whatever
mode a file below gets, nobody but root can reach it when its top directory is 0700.
"""

import os
from pathlib import Path


def make_private(*directories: Path) -> None:
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
