"""Per-registry TLS material from containers-certs.d(5) directories.

`/etc/containers/certs.d/<host[:port]>/` (and docker's `/etc/docker/certs.d/`) may hold `*.crt` files (extra
CAs to trust for that registry, on top of the system's) and `*.cert` + `*.key` pairs (client certificates
for mutual TLS). A private registry with its own CA then works without `insecure = true`.
"""

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.errors import FailedPrecondition

DEFAULT_CERTS_DIRS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


@dataclass(frozen=True)
class HostCerts:
    cas: tuple[Path, ...]
    client_pairs: tuple[tuple[Path, Path], ...]

    @property
    def empty(self) -> bool:
        return not self.cas and not self.client_pairs

    def signature(self) -> tuple[tuple[str, float], ...]:
        """Changes when a file is added, removed or rewritten, so a new SSL context is built."""
        files = [*self.cas, *(p for pair in self.client_pairs for p in pair)]
        return tuple((str(f), f.stat().st_mtime) for f in files if f.exists())


def host_certs(host: str, certs_dirs: Sequence[Path]) -> HostCerts:
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for base in certs_dirs:
        directory = base / host
        if not directory.is_dir():
            continue
        cas += sorted(directory.glob("*.crt"))
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.exists():
                raise FailedPrecondition(f"{cert}: client certificate without its key {key.name}")
            pairs.append((cert, key))
    return HostCerts(tuple(cas), tuple(pairs))


def ssl_context(certs: HostCerts) -> ssl.SSLContext:
    context = ssl.create_default_context()
    try:
        for ca in certs.cas:
            context.load_verify_locations(cafile=str(ca))
        for cert, key in certs.client_pairs:
            context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as err:
        raise FailedPrecondition(f"registry certificates: {err}") from None
    return context
