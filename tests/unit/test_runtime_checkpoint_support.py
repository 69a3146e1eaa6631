"""RuncRuntime.checkpoint_support for crun: Debian 13's crun loads libcriu.so.2 only when it checkpoints.

The runtime here is a script that answers `--version` and `checkpoint --help` as crun 1.21 does; whether
libcriu is found is the one thing varied (the in-VM contract suite runs the real crun with and without it).
"""

import ctypes.util
from pathlib import Path

import pytest

from adapters.runc.runtime import RuncRuntime


def _runtime(tmp_path: Path, calls_itself: str) -> RuncRuntime:
    script = tmp_path / "oci-runtime"
    script.write_text(
        "#!/bin/sh\n"
        f'for arg; do [ "$arg" = --version ] && {{ echo "{calls_itself} version 1.21"; exit 0; }}; done\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    return RuncRuntime(str(script), str(tmp_path / "root"), timeout=30)


def test_crun_without_libcriu_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    reason = _runtime(tmp_path, "crun").checkpoint_support()
    assert "libcriu.so.2" in reason and "libcriu2" in reason


def test_runc_does_not_need_libcriu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert "libcriu" not in _runtime(tmp_path, "runc").checkpoint_support()


def test_crun_with_libcriu_goes_on_to_ask_criu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.2")
    assert "libcriu" not in _runtime(tmp_path, "crun").checkpoint_support()
