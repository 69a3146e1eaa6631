"""Running one CNI plugin: the CNI_* environment, the config on stdin, the result or error on stdout."""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.cni.conf import find_plugin
from adapters.process import runner
from domain.errors import Internal, InvalidArgument, Unavailable


@dataclass(frozen=True)
class PluginCall:
    command: str  # ADD, DEL, CHECK
    container_id: str
    netns: str
    ifname: str
    # K8S_POD_NAMESPACE=...;K8S_POD_NAME=... as CNI_ARGS
    args: Sequence[tuple[str, str]]


class PluginFailed(Internal):
    """A plugin exited non-zero; `code` is the CNI error code when it printed one."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def cni_args_text(args: Sequence[tuple[str, str]]) -> str:
    """CNI_ARGS as libcni writes it. The format has no escaping, so a key or value holding ';' or '=' would
    smuggle in another argument (a pod named `x;IP=10.0.0.9` asking host-local for an address): refused."""
    for key, value in args:
        for text in (key, value):
            if any(c in text for c in ";=\0") or not text.isprintable():
                raise InvalidArgument(f"CNI argument {key[:40]!r}: {text[:80]!r} cannot go into CNI_ARGS")
    return ";".join(f"{k}={v}" for k, v in args)


def invoke(
    plugin_type: str, config: dict[str, Any], call: PluginCall, plugin_dirs: list[Path], timeout: float
) -> dict[str, Any]:
    """Run the plugin; the parsed stdout (empty dict when it printed nothing, as DEL may)."""
    path = find_plugin(plugin_type, plugin_dirs)
    if path is None:
        raise Unavailable(f"CNI plugin {plugin_type!r} not found in {', '.join(map(str, plugin_dirs))}")
    env = dict(os.environ)
    env.update(
        {
            "CNI_COMMAND": call.command,
            "CNI_CONTAINERID": call.container_id,
            "CNI_NETNS": call.netns,
            "CNI_IFNAME": call.ifname,
            "CNI_PATH": os.pathsep.join(map(str, plugin_dirs)),
            "CNI_ARGS": cni_args_text(call.args),
        }
    )
    result = runner.run([str(path)], timeout=timeout, input=json.dumps(config).encode(), env=env, check=False)
    stdout = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0:
        raise _failure(plugin_type, call.command, result.returncode, stdout, result.stderr)
    if not stdout or call.command == "DEL":
        return {}  # a DEL that exited 0 succeeded whatever it printed (libcni reads no result from DEL)
    try:
        parsed = json.loads(stdout)
    except ValueError as err:
        raise Internal(f"CNI plugin {plugin_type} {call.command} printed no JSON: {stdout[:200]!r}") from err
    if not isinstance(parsed, dict):
        raise Internal(f"CNI plugin {plugin_type} {call.command} printed {parsed!r}")
    return parsed


def _failure(plugin_type: str, command: str, returncode: int, stdout: str, stderr: bytes) -> PluginFailed:
    code, message = 0, stdout or stderr.decode(errors="replace").strip()
    try:
        error = json.loads(stdout)
        code = int(error.get("code", 0))
        message = str(error.get("msg", "")) + (f": {error['details']}" if error.get("details") else "")
    except (ValueError, AttributeError, TypeError):
        pass
    return PluginFailed(
        f"CNI plugin {plugin_type} {command} failed (exit {returncode}, code {code}): {message}", code
    )
