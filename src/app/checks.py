"""What start-up refuses about the host, found before anything starts (`pycrio check` prints the same).

A key can be well-formed and still unusable on this machine: a runtime handler whose binary is missing
fails only at the first container, a CNI dir that does not exist leaves the node NotReady for a reason
nobody reads. Each problem is one line naming the key, the value and what is allowed.
"""

import importlib.util
import os
from pathlib import Path

from adapters.host.unix_sockets import SocketInUse, is_served
from adapters.namespaces.ns_helper import helper_path
from app.config import Config


def host_problems(config: Config) -> list[str]:
    problems: list[str] = []
    for name, handler in sorted(config.runtime.runtimes.items()):
        problems += _executable(f"runtime.runtimes.{name}.path", handler.path)
        if handler.root:
            problems += _usable_dir(f"runtime.runtimes.{name}.root", handler.root)
    problems += _executable("runtime.conmon", config.runtime.conmon)
    problems += _executable("runtime.infra_init", config.runtime.infra_init)
    problems += _ns_helper(config.runtime.ns_helper)
    problems += _usable_dir("runtime.root", config.runtime.root)
    problems += _usable_dir("runtime.run_dir", config.runtime.run_dir)
    if not Path(config.network.cni_conf_dir).is_dir():
        problems.append(_line("network.cni_conf_dir", config.network.cni_conf_dir, "an existing directory"))
    if not any(Path(d).is_dir() for d in config.network.cni_plugin_dirs):
        problems.append(
            _line(
                "network.cni_plugin_dirs", config.network.cni_plugin_dirs, "at least one existing directory"
            )
        )
    for key, path in (
        ("streaming.tls_cert", config.streaming.tls_cert),
        ("streaming.tls_key", config.streaming.tls_key),
    ):
        if path and not os.access(path, os.R_OK):
            problems.append(_line(key, path, "a readable file"))
    if config.nri.enable:
        problems += _unserved_socket("nri.socket_path", config.nri.socket_path)
    if config.tracing.enabled and importlib.util.find_spec("opentelemetry.sdk") is None:
        problems.append(_line("tracing.enabled", True, "false, or true with pip install 'pycrio[tracing]'"))
    return problems


def _unserved_socket(key: str, path: str) -> list[str]:
    """containerd and cri-o serve NRI at the same default path: taking it over would cut their plugins off."""
    try:
        served = Path(path).is_socket() and is_served(Path(path))
    except SocketInUse:
        served = True
    if not served:
        return []
    return [_line(key, path, "a socket path no other process serves (another runtime's NRI?)")]


def _executable(key: str, path: str) -> list[str]:
    if Path(path).is_file() and os.access(path, os.X_OK):
        return []
    return [_line(key, path, "an executable file")]


def _ns_helper(configured: str) -> list[str]:
    path = helper_path(configured)
    if Path(path).is_file() and os.access(path, os.X_OK):
        return []
    built = "" if configured else " (built from pycrio-ns.c beside it by `make helpers`)"
    return [_line("runtime.ns_helper", path, f"an executable file{built}")]


def _usable_dir(key: str, path: str) -> list[str]:
    """A directory, or one that can be made: its nearest existing ancestor is a writable directory."""
    target = Path(path)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == target and target.is_dir() and os.access(target, os.W_OK | os.X_OK):
        return []
    if existing != target and existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return []
    return [_line(key, path, "a writable directory, or one that can be created")]


def _line(key: str, value: object, allowed: str) -> str:
    return f"{key}: {value!r} cannot be used; allowed: {allowed}"
