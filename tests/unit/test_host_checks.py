"""What start-up refuses about the host: each problem one line with the key, the value, what is allowed."""

import socket
import stat
from pathlib import Path

import pytest

from adapters.namespaces import ns_helper
from app.checks import host_problems
from app.config import Config, load


def _config(tmp_path: Path, *overrides: str) -> Config:
    net = tmp_path / "net.d"
    net.mkdir(exist_ok=True)
    return load(
        None,
        overrides=[
            f'runtime.root="{tmp_path / "root"}"',
            f'runtime.run_dir="{tmp_path / "run"}"',
            f'network.cni_conf_dir="{net}"',
            f'runtime.runtimes.crun.path="{_fake_binary(tmp_path, "crun")}"',
            f'runtime.runtimes.runc.path="{_fake_binary(tmp_path, "runc")}"',
            f'runtime.conmon="{_fake_binary(tmp_path, "conmon")}"',
            f'runtime.infra_init="{_fake_binary(tmp_path, "catatonit")}"',
            f'network.cni_plugin_dirs=["{tmp_path}"]',
            *overrides,
        ],
    )


def _fake_binary(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_usable_host_has_no_problems(tmp_path: Path) -> None:
    assert host_problems(_config(tmp_path)) == []


def test_a_handler_whose_binary_is_missing_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, 'runtime.runtimes.kata.path="/nonexistent/kata"')
    assert host_problems(config) == [
        "runtime.runtimes.kata.path: '/nonexistent/kata' cannot be used; allowed: an executable file"
    ]


def test_a_handler_binary_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    plain.chmod(stat.S_IRUSR | stat.S_IWUSR)
    config = _config(tmp_path, f'runtime.runtimes.runc.path="{plain}"')
    # Even root may execute only what has an x bit.
    assert host_problems(config) == [
        f"runtime.runtimes.runc.path: '{plain}' cannot be used; allowed: an executable file"
    ]


def test_a_handler_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = _config(tmp_path, f'runtime.runtimes.runc.root="{blocker / "state"}"')
    assert host_problems(config) == [
        f"runtime.runtimes.runc.root: '{blocker / 'state'}' cannot be used; "
        "allowed: a writable directory, or one that can be created"
    ]


def test_a_cni_dir_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, f'network.cni_conf_dir="{tmp_path / "absent"}"')
    assert host_problems(config) == [
        f"network.cni_conf_dir: '{tmp_path / 'absent'}' cannot be used; allowed: an existing directory"
    ]


def test_a_missing_namespace_helper_is_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path, f'runtime.ns_helper="{tmp_path / "no-pycrio-ns"}"')
    assert host_problems(config) == [
        f"runtime.ns_helper: '{tmp_path / 'no-pycrio-ns'}' cannot be used; allowed: an executable file"
    ]


def test_the_built_namespace_helper_is_the_default_and_missing_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "src" / "pycrio-ns"
    monkeypatch.setattr(ns_helper, "BUILT_HELPER", str(absent))
    assert host_problems(_config(tmp_path)) == [
        f"runtime.ns_helper: '{absent}' cannot be used; allowed: an executable file (built from pycrio-ns.c "
        "beside it by `make helpers`)"
    ]


def test_an_nri_socket_another_runtime_serves_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nri.sock"
    theirs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.bind(str(path))
    theirs.listen()
    config = _config(tmp_path, "nri.enable=true", f'nri.socket_path="{path}"', 'nri.plugin_dir=""')
    try:
        assert host_problems(config) == [
            f"nri.socket_path: '{path}' cannot be used; allowed: a socket path no other process serves "
            "(another runtime's NRI?)"
        ]
    finally:
        theirs.close()
    assert host_problems(config) == []  # stale: the daemon replaces it
