"""How the daemon runs its own Python helpers (pinns, infra launcher) as separate processes."""

import os
import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[2])


def helper_command(module: str, *args: str) -> list[str]:
    # -S: the helpers use only the standard library, and skipping site start-up is a third of their run time.
    # -c rather than -m: runpy and importlib.util cost more than the helper's imports (either way,
    # sys.path[0] is the cwd).
    code = f"import sys; from {module} import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-S", "-c", code, *args]


def helper_env() -> dict[str, str]:
    """The daemon's environment with pycrio's sources importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH", "")) if p)
    return env
