"""RuncRuntime.kill: which runtime failures mean "already stopped" (not an error) and which are errors.

The runtime is a script that answers every call with a given message and exit code, as runc 1.1 does in
the races it is named for (its `kill --all` freezes the cgroup first and fails if the container stopped).
"""

from pathlib import Path

import pytest

from adapters.runc.runtime import RuncRuntime
from domain.errors import Internal


def _runtime(tmp_path: Path, message: str) -> RuncRuntime:
    script = tmp_path / "oci-runtime"
    script.write_text(f'#!/bin/sh\necho \'time="x" level=error msg="{message}"\' >&2\nexit 1\n')
    script.chmod(0o755)
    return RuncRuntime(str(script), str(tmp_path / "root"), timeout=30)


@pytest.mark.parametrize(
    "message", ["container not running", "invalid state transition from stopped to paused"]
)
def test_a_container_that_stopped_meanwhile_is_not_a_kill_error(tmp_path: Path, message: str) -> None:
    _runtime(tmp_path, message).kill("c1", 9, all_processes=True)


def test_other_kill_failures_are_errors_with_the_runtimes_words(tmp_path: Path) -> None:
    with pytest.raises(Internal, match="permission denied"):
        _runtime(tmp_path, "permission denied").kill("c1", 9)
