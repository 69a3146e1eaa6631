"""containers-auth.json(5) files: a global one and one per Kubernetes namespace (cri-o's
`global_auth_file` and `namespaced_auth_dir`).

Keys are `host`, `host/namespace/repo` or any path prefix of a repository; the longest prefix of the
reference wins, as in containers-auth.json(5). Legacy docker keys (`https://index.docker.io/v1/`) are
normalised to their host (`docker.io`). The pod's namespace file `<dir>/<namespace>.json` is consulted
first, then the global file. Both are read at each lookup, so edits apply to the next pull.
"""

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

import structlog

from domain.errors import FailedPrecondition, InvalidArgument
from ports.registry import RegistryAuth

_log = structlog.get_logger("pycrio.registry")

# A Kubernetes namespace name (RFC 1123 label): also what keeps `<dir>/<namespace>.json` inside the dir.
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Auth files are small; a bigger one is a mistake, not something to read into memory.
MAX_AUTH_FILE_BYTES = 1024 * 1024


class AuthFileCredentials:
    def __init__(self, global_file: str = "", namespaced_dir: str = "") -> None:
        self._global = Path(global_file) if global_file else None
        self._namespaced = Path(namespaced_dir) if namespaced_dir else None

    def lookup(self, reference: str, namespace: str = "") -> RegistryAuth | None:
        files: list[Path] = []
        if namespace and self._namespaced is not None:
            if not _NAMESPACE.fullmatch(namespace):
                raise InvalidArgument(
                    f"sandbox_config.metadata.namespace: {namespace!r} is not a namespace name"
                )
            files.append(self._namespaced / f"{namespace}.json")
        if self._global is not None:
            files.append(self._global)
        for path in files:
            found = _match(_read(path), reference)
            if found is not None:
                _log.debug("credentials from auth file", file=str(path), reference=reference)
                return found
        return None


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_AUTH_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise FailedPrecondition(f"auth file {path}: {err.strerror}") from None
    if len(raw) > MAX_AUTH_FILE_BYTES:
        raise FailedPrecondition(f"auth file {path}: larger than {MAX_AUTH_FILE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FailedPrecondition(f"auth file {path}: not JSON: {err}") from None
    auths = document.get("auths", {}) if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        raise FailedPrecondition(f"auth file {path}: 'auths' is not an object")
    return {_normalise_key(key): entry for key, entry in auths.items() if isinstance(entry, dict)}


def _normalise_key(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http(s)://host/...` keys keep only the host."""
    if key.startswith(("http://", "https://")):
        key = key.split("://", 1)[1].split("/", 1)[0]
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    return host + sep + rest


def _match(auths: dict[str, dict[str, Any]], reference: str) -> RegistryAuth | None:
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        name = last[0] + "/" + last[1].split(":", 1)[0]
    parts = name.split("/")
    for length in range(len(parts), 0, -1):
        entry = auths.get("/".join(parts[:length]))
        if entry is not None:
            return _auth(entry, "/".join(parts[:length]))
    return None


def _auth(entry: dict[str, Any], key: str) -> RegistryAuth:
    encoded = entry.get("auth", "")
    token = entry.get("identitytoken", "")
    if not isinstance(encoded, str) or not isinstance(token, str):
        raise FailedPrecondition(f"auth file entry {key!r}: 'auth' and 'identitytoken' must be strings")
    if encoded:
        try:
            user, sep, _ = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep, user = "", ""
        if not sep or not user:
            raise FailedPrecondition(f"auth file entry {key!r}: 'auth' is not base64 of user:password")
    return RegistryAuth(auth=encoded, identity_token=token, server_address=key.split("/", 1)[0])
