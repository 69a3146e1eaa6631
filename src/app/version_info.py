"""`pycrio version`: what an operator pastes into a bug report (cri-o's `crio version`)."""

import platform
import subprocess
from pathlib import Path

from app.config import Config
from app.version import VERSION


def version_lines(config: Config) -> list[str]:
    import grpc

    lines = [
        f"Version:       {VERSION}",
        f"GitCommit:     {git_commit() or 'unknown'}",
        f"Python:        {platform.python_implementation()} {platform.python_version()}",
        f"grpcio:        {grpc.__version__}",
    ]
    for name, handler in sorted(config.runtime.runtimes.items()):
        lines.append(f"Runtime {name}:".ljust(15) + f"{_first_line(handler.path)} ({handler.path})")
    lines.append("conmon:".ljust(15) + f"{_first_line(config.runtime.conmon)} ({config.runtime.conmon})")
    return lines


def git_commit() -> str:
    """The commit of the source tree pycrio runs from, when that is a git checkout."""
    source = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _first_line(binary: str) -> str:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not usable: {err}"
    lines = result.stdout.strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else f"not usable: exit {result.returncode}"
