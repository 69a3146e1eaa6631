"""Simple-signing signatures from a lookaside store (containers-registries.d(5)): a local directory
(`file://`) or a web server (`http://`, `https://`): `signature-1`, `signature-2`, ... until one is
missing."""

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from domain.errors import InvalidArgument, Unavailable
from domain.registries_d import signature_url
from ports.signatures import MAX_SIGNATURE_BYTES, MAX_SIGNATURES

if TYPE_CHECKING:
    import httpx


class LookasideStore:
    def __init__(self, timeout: float = 30.0, transport: "httpx.BaseTransport | None" = None) -> None:
        self._timeout = timeout
        self._transport = transport

    def fetch(self, base_url: str, manifest_digest: str) -> list[bytes]:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("file", "http", "https"):
            raise InvalidArgument(f"lookaside {base_url}: unsupported URL scheme {scheme!r}")
        if scheme == "file":
            return _collect(base_url, manifest_digest, _read_file)
        import httpx  # at the first web lookaside, not at start-up: the idle daemon does without it

        with httpx.Client(timeout=self._timeout, transport=self._transport, follow_redirects=True) as client:
            return _collect(base_url, manifest_digest, lambda url: _get(client, url))


def _collect(base_url: str, manifest_digest: str, read: Callable[[str], bytes | None]) -> list[bytes]:
    """signature-1, signature-2, ... until one is missing; more than MAX_SIGNATURES is an error."""
    found: list[bytes] = []
    for index in range(1, MAX_SIGNATURES + 2):
        blob = read(signature_url(base_url, manifest_digest, index))
        if blob is None:
            return found
        if index > MAX_SIGNATURES:
            raise Unavailable(f"lookaside {base_url}: more than {MAX_SIGNATURES} signatures")
        found.append(blob)
    return found


def _read_file(url: str) -> bytes | None:
    path = unquote(urlsplit(url).path)
    try:
        with open(path, "rb") as handle:
            blob = handle.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise Unavailable(f"reading signature {path}: {err.strerror or err}") from None
    return _bounded(blob, url)


def _get(client: "httpx.Client", url: str) -> bytes | None:
    import httpx

    try:
        with client.stream("GET", url) as response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise Unavailable(f"reading signature {url}: HTTP {response.status_code}")
            blob = bytearray()
            for chunk in response.iter_bytes():
                blob += chunk
                if len(blob) > MAX_SIGNATURE_BYTES:
                    break
    except httpx.HTTPError as err:
        raise Unavailable(f"reading signature {url}: {err}") from None
    return _bounded(bytes(blob), url)


def _bounded(blob: bytes, url: str) -> bytes:
    if len(blob) > MAX_SIGNATURE_BYTES:
        raise Unavailable(f"signature {url} is larger than {MAX_SIGNATURE_BYTES} bytes")
    if not blob:
        raise Unavailable(f"signature {url} is empty")
    return blob
