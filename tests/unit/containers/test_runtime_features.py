"""Runtime features from `<runtime> features`: recursive read-only needs the runtime and the kernel."""

import json
import shutil
from pathlib import Path

from adapters.runc.features import supports_recursive_read_only


def fake_runtime(tmp_path: Path, output: str, code: int = 0) -> str:
    script = tmp_path / "fake-runtime"
    script.write_text(f"#!/bin/sh\ncat <<'JSON'\n{output}\nJSON\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


def test_rro_listed_and_a_new_kernel(tmp_path: Path) -> None:
    binary = fake_runtime(tmp_path, json.dumps({"mountOptions": ["bind", "rro"]}))
    assert supports_recursive_read_only(binary, kernel_release="6.18.0")
    assert not supports_recursive_read_only(binary, kernel_release="5.10.0-21-amd64")


def test_no_rro_no_subcommand_no_binary(tmp_path: Path) -> None:
    assert not supports_recursive_read_only(fake_runtime(tmp_path, json.dumps({"mountOptions": ["bind"]})))
    assert not supports_recursive_read_only(fake_runtime(tmp_path, "unknown command features", code=1))
    assert not supports_recursive_read_only(fake_runtime(tmp_path, "not json"))
    assert not supports_recursive_read_only(str(tmp_path / "absent"))


def test_the_installed_runc_supports_it_on_this_kernel() -> None:
    # runc 1.1 lists rro; this machine's kernel is 6.x (MACHINE.md); scripts/bootstrap.sh installs runc.
    runc = shutil.which("runc")
    assert runc is not None
    assert supports_recursive_read_only(runc)
