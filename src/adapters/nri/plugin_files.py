"""NRI plugins' files on the host: per-plugin configuration (cri-o's nri_plugin_config_dir) handed over in
Configure, and pre-installed plugins (cri-o's nri_plugin_dir) that the runtime starts itself, each given
one end of a socket pair as fd 3 instead of connecting to the socket, as upstream's launcher does."""

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

from adapters.process import runner
from domain.errors import InvalidArgument

MAX_CONFIG_BYTES = 1 << 20
_PLUGIN_FILE = re.compile(r"(\d\d)-([^/]+)")
PLUGIN_FD = 3


def read_plugin_config(config_dir: str, name: str) -> str:
    """`<dir>/<index>-<name>.conf`, else `<dir>/<name>.conf`, else "" (no directory: ""). A file over 1 MiB
    is refused: the plugin is not configured from half of it."""
    if not config_dir:
        return ""
    index_and_base = _PLUGIN_FILE.fullmatch(name)
    candidates = [f"{name}.conf"] + ([f"{index_and_base.group(2)}.conf"] if index_and_base else [])
    for candidate in candidates:
        path = Path(config_dir) / candidate
        try:
            with path.open("rb") as config:
                data = config.read(MAX_CONFIG_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            raise InvalidArgument(f"NRI plugin config {path}: {err.strerror}") from None
        if len(data) > MAX_CONFIG_BYTES:
            raise InvalidArgument(f"NRI plugin config {path}: over {MAX_CONFIG_BYTES} bytes")
        return data.decode(errors="replace")
    return ""


def plugin_executables(plugin_dir: str) -> list[tuple[str, str, Path]]:
    """(index, name, path) of every executable regular file named `NN-name` in `plugin_dir`, in order."""
    if not plugin_dir or not os.path.isdir(plugin_dir):
        return []
    found = []
    for entry in sorted(os.scandir(plugin_dir), key=lambda e: e.name):
        matched = _PLUGIN_FILE.fullmatch(entry.name)
        if matched is None or not entry.is_file(follow_symlinks=True):
            continue
        if not stat.S_IMODE(entry.stat().st_mode) & 0o111:
            continue
        found.append((matched.group(1), matched.group(2), Path(entry.path)))
    return found


# Puts the inherited descriptor at fd 3 and becomes the plugin (Popen cannot renumber descriptors, and a
# preexec_fn in the threaded daemon runs gRPC's at-fork handlers in the child; see docs/critest.md).
_TRAMPOLINE = (
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); os.execv(sys.argv[2], sys.argv[2:])"
)


def launch(index: str, name: str, path: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start one pre-installed plugin; returns it and the runtime's end of its connection."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "NRI_PLUGIN_NAME": name,
        "NRI_PLUGIN_IDX": index,
        "NRI_PLUGIN_SOCKET": str(PLUGIN_FD),
    }
    try:
        process = runner.spawn(
            [sys.executable, "-c", _TRAMPOLINE, str(theirs.fileno()), str(path)],
            env=env,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours
