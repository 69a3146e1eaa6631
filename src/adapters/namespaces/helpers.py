"""How the daemon runs its own Python helpers (pinns, infra launcher) as separate processes."""

import os
import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2])


def helper_command(module: str, *args: str) -> list[str]:
    # -S: the helpers use only the standard library, and skipping site start-up is a third of their run time.
    return [sys.executable, "-S", "-m", module, *args]


def helper_env() -> dict[str, str]:
    """The daemon's environment with pycrio's sources importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH", "")) if p)
    return env
