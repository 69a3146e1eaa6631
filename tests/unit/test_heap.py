"""use_one_arena sets glibc's M_ARENA_MAX to 1 (what one pull's threads free, the next reuses), unless
the administrator set it through glibc's environment tunable."""

import os
import subprocess
import sys

import pytest

from adapters.process.heap import ENV_OVERRIDE, use_one_arena

# In a child: the setting is process-wide and must not change the test runner's allocator.
CHILD = "from adapters.process.heap import use_one_arena; print(use_one_arena())"


def test_glibc_accepts_one_arena() -> None:
    env = {key: value for key, value in os.environ.items() if key != ENV_OVERRIDE}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    assert result.stdout.strip() == "True"


def test_the_environment_tunable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_OVERRIDE, "4")
    assert use_one_arena() is False
