"""Runtime features from `<runtime> features`: recursive read-only needs the runtime and the kernel."""

import json
import shutil
from pathlib import Path

from adapters.runc.features import runtime_features


def fake_runtime(tmp_path: Path, output: str, code: int = 0) -> str:
    script = tmp_path / "fake-runtime"
    script.write_text(f"#!/bin/sh\ncat <<'JSON'\n{output}\nJSON\nexit {code}\n")
    script.chmod(0o755)
    return str(script)


def test_rro_listed_and_a_new_kernel(tmp_path: Path) -> None:
    binary = fake_runtime(tmp_path, json.dumps({"mountOptions": ["bind", "rro"]}))
    assert runtime_features(binary, kernel_release="6.18.0").recursive_read_only
    assert not runtime_features(binary, kernel_release="5.10.0-21-amd64").recursive_read_only


def test_no_rro_no_subcommand_no_binary(tmp_path: Path) -> None:
    assert not runtime_features(
        fake_runtime(tmp_path, json.dumps({"mountOptions": ["bind"]}))
    ).recursive_read_only
    assert not runtime_features(
        fake_runtime(tmp_path, "unknown command features", code=1)
    ).recursive_read_only
    assert not runtime_features(fake_runtime(tmp_path, "not json")).recursive_read_only
    assert not runtime_features(str(tmp_path / "absent")).recursive_read_only


def test_the_installed_runc_supports_it_on_this_kernel() -> None:
    # runc 1.1 lists rro; this machine's kernel is 6.x (MACHINE.md); scripts/bootstrap.sh installs runc.
    runc = shutil.which("runc")
    assert runc is not None
    assert runtime_features(runc).recursive_read_only


def test_idmapped_mounts_from_the_idmap_option_or_the_mount_extension(tmp_path: Path) -> None:
    # crun 1.21 lists both; runc 1.2 only the extension.
    for document in (
        {"mountOptions": ["bind", "idmap"]},
        {"mountOptions": ["ridmap"]},
        {"mountOptions": [], "linux": {"mountExtensions": {"idmap": {"enabled": True}}}},
    ):
        found = runtime_features(fake_runtime(tmp_path, json.dumps(document)), kernel_release="6.12.0")
        assert (found.idmapped_mounts, found.idmap_reason) == (True, ""), document


def test_no_idmapped_mounts_says_why(tmp_path: Path) -> None:
    runc_1_1 = {"ociVersionMax": "1.0.2-dev", "mountOptions": ["rro"], "linux": {"mountExtensions": {}}}
    found = runtime_features(fake_runtime(tmp_path, json.dumps(runc_1_1)), kernel_release="6.12.0")
    assert not found.idmapped_mounts
    assert "(ociVersionMax 1.0.2-dev) lists no idmap/ridmap mount option" in found.idmap_reason
    old_kernel = runtime_features(
        fake_runtime(tmp_path, json.dumps({"mountOptions": ["idmap"]})), kernel_release="5.15.0-1-amd64"
    )
    assert not old_kernel.idmapped_mounts
    assert "5.15.0-1-amd64 cannot idmap overlayfs layers" in old_kernel.idmap_reason
    crun_1_8 = runtime_features(fake_runtime(tmp_path, "unknown command features", code=1))
    assert "features` failed" in crun_1_8.idmap_reason
    disabled = {"mountOptions": [], "linux": {"mountExtensions": {"idmap": {"enabled": False}}}}
    assert not runtime_features(fake_runtime(tmp_path, json.dumps(disabled))).idmapped_mounts


def test_the_installed_runc_cannot_idmap_mounts() -> None:
    # runc 1.1 on this kind of machine (MACHINE.md); idmapped mounts came with runc 1.2.
    runc = shutil.which("runc")
    assert runc is not None
    found = runtime_features(runc)
    assert not found.idmapped_mounts
    assert "lists no idmap/ridmap mount option" in found.idmap_reason
