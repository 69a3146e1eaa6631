"""The Registry port over the distribution v2 HTTP API (httpx).

`resolve` fetches from one source (registries.conf chose it, in domain/image_sources.py): manifest (or
index, then the platform's manifest) with its digest verified, then the config blob. `open_blob` streams a
layer from the source that resolved it, hashing and counting as it goes, and resumes with a Range request
when a connection drops mid-blob.
"""

import base64
import binascii
import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from adapters.registry.auth import (
    AuthRefused,
    Credentials,
    TokenCache,
    basic_header,
    credentials_from,
    error_message,
    fetch_token,
)
from adapters.registry.certs import DEFAULT_CERTS_DIRS, host_certs, ssl_context
from adapters.registry.challenge import Challenge, parse_challenges
from adapters.registry.transport import (
    RegistryLimits,
    RetryPolicy,
    SourceUnreachable,
    describe,
    read_capped,
    send,
)
from adapters.tracing.spans import span
from domain.cancellation import Cancellation
from domain.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    PycrioError,
    ResourceExhausted,
    Unavailable,
)
from domain.image_reference import DEFAULT_REGISTRY, DIGEST_HEX_LENGTHS, ImageReference, check_digest, parse
from domain.manifests import (
    ACCEPTED,
    ImageIndex,
    ImageManifest,
    choose_platform,
    layer_compression,
    media_type_of,
    parse_manifest,
)
from domain.registries_conf import PullSource
from ports.registry import Descriptor, Platform, RegistryAuth, ResolvedImage
from ports.signatures import MAX_SIGNATURE_BYTES, MAX_SIGNATURES, SigstoreSignature

_log = structlog.get_logger("pycrio.registry")

# containers/image's limit for a signature API answer.
MAX_SIGNATURE_LIST_BYTES = 4 << 20

DOCKER_HUB_API_HOST = "registry-1.docker.io"

# The error each kind of failure is. Refused credentials are InvalidArgument: the credentials in the request
# (or their absence) are refused, and unchanged a retry cannot succeed.
_KIND_ERRORS: dict[str, type[PycrioError]] = {
    "unavailable": Unavailable,
    "deadline": DeadlineExceeded,
    "auth": InvalidArgument,
    "too_large": ResourceExhausted,
    "bad_content": Internal,
    "not_found": NotFound,
}


class _SourceFailure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class _Session:
    """One host, one repository scope, one set of credentials."""

    host: str
    insecure: bool
    credentials: Credentials
    scope: str


class HttpRegistry:
    def __init__(
        self,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        chunk_size: int = 1 << 20,
        user_agent: str = "pycrio",
        certs_dirs: Sequence[Path] = DEFAULT_CERTS_DIRS,
        limits: RegistryLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits or RegistryLimits()
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._chunk_size = chunk_size
        self._transport = transport
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._user_agent = user_agent
        self._certs_dirs = tuple(certs_dirs)
        self._verified = self._new_client(True)
        self._unverified = self._new_client(False)
        # Clients for hosts with their own CAs or client certificates (certs.d), by host.
        self._host_clients: dict[str, tuple[tuple[tuple[str, float], ...], httpx.Client]] = {}
        self._retired_clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._schemes: dict[tuple[str, bool], str] = {}
        self._challenges: dict[str, Challenge] = {}
        self._signature_api: dict[tuple[str, bool], bool] = {}
        self._tokens = TokenCache()

    def _new_client(self, verify: ssl.SSLContext | bool) -> httpx.Client:
        return httpx.Client(
            verify=verify,
            transport=self._transport,
            timeout=self._timeout,
            follow_redirects=True,
            max_redirects=10,
            headers={"User-Agent": self._user_agent},
        )

    def close(self) -> None:
        self._verified.close()
        self._unverified.close()
        with self._lock:
            clients = [client for _, client in self._host_clients.values()] + self._retired_clients
            self._host_clients, self._retired_clients = {}, []
        for client in clients:
            client.close()

    # -- the port -----------------------------------------------------------------------------------------

    def resolve(self, source: PullSource, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        with span("registry.resolve", source=source.description):
            try:
                return self._resolve_at(source, credentials_from(auth), platform)
            except _SourceFailure as failure:
                raise _KIND_ERRORS[failure.kind](failure.message) from None

    def open_blob(
        self,
        image: ResolvedImage,
        blob: Descriptor,
        auth: RegistryAuth | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        check_digest(blob.digest)
        source, session = self._source_session(image, auth)
        return self._open_blob(session, source, blob, cancel)

    def _source_session(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> tuple[ImageReference, _Session]:
        """The source that resolved `image` and a session on it (insecure as it was when resolved)."""
        source = parse(image.source)
        return source, _Session(source.registry, image.insecure, credentials_from(auth), _pull_scope(source))

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        source, session = self._source_session(image, auth)
        digest = image.index_digest or image.manifest_digest
        what = f"fetching signatures of {source.name}@{digest}"
        try:
            if not self._supports_signatures(session):
                return None
            response = self._request(session, "GET", f"/extensions/v2/{source.path}/signatures/{digest}", {})
            try:
                _check_status(response, f"signatures of {digest}", self._limits.max_error_body_bytes)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_SIGNATURE_LIST_BYTES:
                        raise _SourceFailure(
                            "bad_content", f"signature list larger than {MAX_SIGNATURE_LIST_BYTES}"
                        )
            except httpx.HTTPError as err:
                raise _SourceFailure("unavailable", f"reading signatures: {describe(err)}") from None
            finally:
                response.close()
            return _extension_signatures(bytes(body))
        except _SourceFailure as failure:
            raise _source_error(what, source.name, failure) from None

    def _supports_signatures(self, session: _Session) -> bool:
        """Whether the registry announces the signature API (`X-Registry-Supports-Signatures: 1` on /v2/)."""
        key = (session.host, session.insecure)
        with self._lock:
            known = self._signature_api.get(key)
        if known is None:
            response = self._request(session, "GET", "/v2/", {})
            known = response.headers.get("X-Registry-Supports-Signatures", "") == "1"
            response.close()
            with self._lock:
                self._signature_api[key] = known
        return known

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        source, session = self._source_session(image, auth)
        algorithm, _, hex_part = (image.index_digest or image.manifest_digest).partition(":")
        tag = f"{algorithm}-{hex_part}.sig"
        try:
            try:
                body, _, _ = self._fetch_manifest(session, source.path, tag, "")
            except _SourceFailure as failure:
                if failure.kind == "not_found":
                    return []
                raise
            layers = _attachment_layers(body, tag)
            signatures = []
            for layer in layers:
                data = b"".join(self._stream_blob(session, source.path, layer))
                signatures.append(SigstoreSignature(layer.media_type, data, dict(layer.annotations)))
            return signatures
        except _SourceFailure as failure:
            raise _source_error(
                f"fetching sigstore signatures {source.name}:{tag}", source.name, failure
            ) from None

    def _open_blob(
        self, session: _Session, source: ImageReference, blob: Descriptor, cancel: Cancellation | None
    ) -> Iterator[bytes]:
        try:
            yield from self._stream_blob(session, source.path, blob, cancel=cancel)
        except _SourceFailure as failure:
            raise _source_error(f"fetching blob {blob.digest}", source.name, failure) from None

    # -- resolving ------------------------------------------------------------------------------------------

    def _resolve_at(self, source: PullSource, credentials: Credentials, platform: Platform) -> ResolvedImage:
        reference = source.reference
        session = _Session(reference.registry, source.insecure, credentials, _pull_scope(reference))
        body, media_type, digest = self._fetch_manifest(
            session, reference.path, reference.digest or reference.tag, reference.digest
        )
        parsed = _parse(body, media_type)
        index_digest = ""
        if isinstance(parsed, ImageIndex):
            try:
                chosen = choose_platform(parsed, platform)
            except LookupError as err:
                raise _SourceFailure("not_found", str(err)) from None
            index_digest = digest
            body, media_type, digest = self._fetch_manifest(
                session, reference.path, chosen.digest, chosen.digest
            )
            parsed = _parse(body, media_type)
            if isinstance(parsed, ImageIndex):
                raise _SourceFailure("bad_content", f"index {index_digest} points at another index {digest}")
        for layer in parsed.layers:
            try:
                layer_compression(layer.media_type)
            except InvalidArgument as err:
                raise _SourceFailure("bad_content", f"manifest {digest}: {err}") from None
        limit = self._limits.max_config_bytes
        if parsed.config.size > limit:
            raise _SourceFailure(
                "too_large",
                f"config {parsed.config.digest} is {parsed.config.size} bytes, more than {limit} "
                "(config key image.max_config_bytes)",
            )
        deadline = self._limits.request_deadline + self._clock()
        try:
            config = b"".join(self._stream_blob(session, reference.path, parsed.config, deadline))
        except Internal as err:
            raise _SourceFailure("bad_content", str(err)) from None
        return ResolvedImage(
            name=reference.name,
            tag=reference.tag,
            manifest_digest=digest,
            manifest_media_type=media_type,
            manifest=body,
            config_digest=parsed.config.digest,
            config=config,
            layers=list(parsed.layers),
            source=reference.name,
            index_digest=index_digest,
            insecure=source.insecure,
        )

    def _fetch_manifest(
        self, session: _Session, path: str, reference: str, expected_digest: str
    ) -> tuple[bytes, str, str]:
        """The manifest's bytes, media type and digest, verified against `expected_digest` when given."""
        deadline = self._limits.request_deadline + self._clock()
        response = self._request(
            session, "GET", f"/v2/{path}/manifests/{reference}", {"Accept": ", ".join(ACCEPTED)}
        )
        try:
            _check_status(
                response,
                f"manifest {path}:{reference}" if ":" not in reference else f"manifest {path}@{reference}",
                self._limits.max_error_body_bytes,
            )
            try:
                body = read_capped(
                    response,
                    self._limits.max_manifest_bytes,
                    f"manifest {reference}",
                    "image.max_manifest_bytes",
                    deadline,
                    self._clock,
                )
            except ResourceExhausted as err:
                raise _SourceFailure("too_large", str(err)) from None
            except DeadlineExceeded as err:
                raise _SourceFailure("deadline", str(err)) from None
            except httpx.TransportError as err:
                raise _SourceFailure(
                    "unavailable", f"reading manifest {reference}: {describe(err)}"
                ) from None
            except httpx.RequestError as err:  # e.g. a Content-Encoding that does not decode
                raise _SourceFailure(
                    "bad_content", f"reading manifest {reference}: {describe(err)}"
                ) from None
            content_type = response.headers.get("Content-Type", "")
            header_digest = response.headers.get("Docker-Content-Digest", "")
        finally:
            response.close()
        data = body
        try:
            media_type = media_type_of(data, content_type)
        except Internal as err:
            raise _SourceFailure("bad_content", f"manifest {reference}: {err}") from None
        if expected_digest:
            if _digest_of(data, expected_digest) != expected_digest:
                raise _SourceFailure(
                    "bad_content", f"manifest {reference}: content does not match digest {expected_digest}"
                )
            return data, media_type, expected_digest
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if (
            header_digest
            and header_digest.startswith("sha")
            and _digest_of(data, header_digest) != header_digest
        ):
            raise _SourceFailure(
                "bad_content",
                f"manifest {reference}: registry says digest {header_digest}, content is {digest}",
            )
        return data, media_type, digest

    # -- blobs ----------------------------------------------------------------------------------------------

    def _stream_blob(
        self,
        session: _Session,
        path: str,
        blob: Descriptor,
        deadline: float | None = None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        """The blob in chunks; Internal on a size or digest mismatch (at the latest after the last chunk).
        With a `deadline` (documents such as the config), the whole download must end before it. Once
        `cancel` is cancelled, the body's socket is shut down (a blocked read returns) and its reason raised.

        (A registry that has not sent the response headers yet is not interrupted: httpx does not expose the
        socket before them; the read timeout bounds that wait.)"""
        algorithm, _, expected_hex = blob.digest.partition(":")
        if algorithm not in DIGEST_HEX_LENGTHS:
            raise Internal(f"blob {blob.digest}: unsupported digest algorithm")
        hasher = hashlib.new(algorithm)
        received = 0
        interruptions = 0
        while True:
            if cancel is not None:
                cancel.check()
            headers = {"Range": f"bytes={received}-"} if received else {}
            response = self._request(session, "GET", f"/v2/{path}/blobs/{blob.digest}", headers)
            try:
                with _aborted_on(cancel, response):
                    _check_status(
                        response, f"blob {blob.digest}", self._limits.max_error_body_bytes, (200, 206)
                    )
                    skip = received if response.status_code == 200 else 0
                    if response.status_code == 206 and not response.headers.get(
                        "Content-Range", ""
                    ).startswith(f"bytes {received}-"):
                        raise _SourceFailure(
                            "bad_content", f"blob {blob.digest}: registry resumed at the wrong offset"
                        )
                    try:
                        for chunk in response.iter_bytes(self._chunk_size):
                            if skip:
                                dropped = min(skip, len(chunk))
                                chunk, skip = chunk[dropped:], skip - dropped
                                if not chunk:
                                    continue
                            received += len(chunk)
                            if received > blob.size:
                                raise Internal(
                                    f"blob {blob.digest}: more than the {blob.size} bytes its descriptor says"
                                )
                            hasher.update(chunk)
                            if deadline is not None and self._clock() > deadline:
                                raise _SourceFailure(
                                    "deadline",
                                    f"blob {blob.digest} was not received in time "
                                    "(config key image.registry_request_deadline)",
                                )
                            if cancel is not None:
                                cancel.check()
                            yield chunk
                    except httpx.TransportError as err:
                        if cancel is not None:
                            cancel.check()  # the read ended because the pull was cancelled: no resuming
                        interruptions += 1
                        if interruptions >= self._policy.attempts:
                            raise _SourceFailure(
                                "unavailable",
                                f"blob {blob.digest} interrupted {interruptions} times: {describe(err)}",
                            ) from None
                        _log.info("blob download interrupted, resuming", digest=blob.digest, offset=received)
                        self._sleep(self._policy.delay(interruptions - 1))
                        continue
                    except httpx.RequestError as err:
                        raise _SourceFailure("bad_content", f"blob {blob.digest}: {describe(err)}") from None
            finally:
                response.close()
            break
        if cancel is not None:
            cancel.check()
        if received != blob.size:
            raise Internal(f"blob {blob.digest}: got {received} bytes, its descriptor says {blob.size}")
        if hasher.hexdigest() != expected_hex:
            raise Internal(f"blob {blob.digest}: content has digest {algorithm}:{hasher.hexdigest()}")

    # -- HTTP, schemes and authentication -------------------------------------------------------------------

    def _client(self, session: _Session) -> httpx.Client:
        if session.insecure:
            return self._unverified
        certs = host_certs(session.host, self._certs_dirs)
        if certs.empty:
            return self._verified
        signature = certs.signature()
        with self._lock:
            cached = self._host_clients.get(session.host)
        if cached is not None and cached[0] == signature:
            return cached[1]
        client = self._new_client(ssl_context(certs))
        with self._lock:
            replaced = self._host_clients.get(session.host)
            self._host_clients[session.host] = (signature, client)
            if replaced is not None:
                # Another pull may still be using it: close it with the adapter, not now.
                self._retired_clients.append(replaced[1])
        return client

    def _base_url(self, session: _Session) -> str:
        """Where the registry's API answers; Docker Hub's lives on registry-1.docker.io, not docker.io."""
        with self._lock:
            scheme = self._schemes.get((session.host, session.insecure))
        if scheme is None:
            scheme = self._detect_scheme(session)
            with self._lock:
                self._schemes[(session.host, session.insecure)] = scheme
        return f"{scheme}://{_api_host(session.host)}"

    def _detect_scheme(self, session: _Session) -> str:
        """https always for secure registries; an insecure one may be plain http (tried after https)."""
        if not session.insecure:
            return "https"
        errors = []
        for scheme in ("https", "http"):
            try:
                url = f"{scheme}://{_api_host(session.host)}/v2/"
                send(self._unverified, "GET", url, {}, self._policy, self._sleep).close()
                return scheme
            except SourceUnreachable as err:
                errors.append(f"{scheme}: {err}")
        raise _SourceFailure("unavailable", "; ".join(errors))

    def _request(self, session: _Session, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        """The response with its body unread (the caller reads it within a cap, then closes it)."""
        try:
            url = self._base_url(session) + path
            client = self._client(session)
            authorization = self._known_authorization(session, client)
            sent = {**headers, **({"Authorization": authorization} if authorization else {})}
            response = send(client, method, url, sent, self._policy, self._sleep)
            if response.status_code != 401:
                return response
            # A cached token the registry no longer takes is replaced, not offered again.
            fresh = self._authorize(session, client, response, refresh=authorization is not None)
            if fresh is None or fresh == authorization:
                return response
            response.close()
            return send(
                client,
                method,
                url,
                {**headers, "Authorization": fresh},
                self._policy,
                self._sleep,
            )
        except SourceUnreachable as err:
            raise _SourceFailure("unavailable", f"{session.host}: {err}") from None
        except httpx.RequestError as err:  # too many redirects, a malformed Location, ...
            raise _SourceFailure("bad_content", f"{session.host}: {describe(err)}") from None
        except AuthRefused as err:
            raise _SourceFailure("auth", str(err)) from None
        except ResourceExhausted as err:  # a token answer past image.max_token_bytes
            raise _SourceFailure("too_large", str(err)) from None
        except DeadlineExceeded as err:
            raise _SourceFailure("deadline", str(err)) from None

    def _known_authorization(self, session: _Session, client: httpx.Client) -> str | None:
        """An Authorization header for what we already know of the host, to spare a 401 round trip."""
        credentials = session.credentials
        if credentials.registry_token:
            return f"Bearer {credentials.registry_token}"
        with self._lock:
            challenge = self._challenges.get(session.host)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_header(credentials) if credentials.has_basic else None
        return self._bearer(session, client, challenge)

    def _authorize(
        self, session: _Session, client: httpx.Client, response: httpx.Response, refresh: bool
    ) -> str | None:
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return None
        with self._lock:
            self._challenges[session.host] = chosen
        if chosen.scheme == "basic":
            return basic_header(session.credentials) if session.credentials.has_basic else None
        return self._bearer(session, client, chosen, refresh)

    def _bearer(
        self, session: _Session, client: httpx.Client, challenge: Challenge, refresh: bool = False
    ) -> str:
        scopes = tuple(sorted({session.scope, *challenge.scope.split()} - {""}))
        key = (challenge.realm, challenge.service, scopes, session.credentials.fingerprint)
        token = None if refresh else self._tokens.get(key)
        if token is None:
            token, ttl = fetch_token(
                client, challenge, scopes, session.credentials, self._policy, self._sleep, self._limits
            )
            self._tokens.put(key, token, ttl)
        return f"Bearer {token}"


def _api_host(host: str) -> str:
    return DOCKER_HUB_API_HOST if host == DEFAULT_REGISTRY else host


def _pull_scope(reference: ImageReference) -> str:
    return f"repository:{reference.path}:pull"


def _parse(body: bytes, media_type: str) -> ImageManifest | ImageIndex:
    try:
        return parse_manifest(body, media_type)
    except Internal as err:
        raise _SourceFailure("bad_content", str(err)) from None


def _extension_signatures(body: bytes) -> list[bytes]:
    """The simple-signing blobs of a signature API answer: {"signatures": [{"schemaVersion": 2,
    "type": "atomic", "content": <base64>}, ...]}; other kinds are skipped, as containers/image does."""
    try:
        entries = json.loads(body).get("signatures") or []
        blobs = [
            base64.b64decode(entry["content"], validate=True)
            for entry in entries
            if entry.get("schemaVersion") == 2 and entry.get("type") == "atomic"
        ]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
        raise _SourceFailure("bad_content", f"signature list: {err}") from None
    if len(blobs) > MAX_SIGNATURES or any(len(blob) > MAX_SIGNATURE_BYTES for blob in blobs):
        raise _SourceFailure("bad_content", f"signature list: more than {MAX_SIGNATURES} or too large")
    return blobs


def _attachment_layers(body: bytes, tag: str) -> list[Descriptor]:
    """The layers of a sigstore attachment manifest (an OCI image manifest), bounded in number and size."""
    try:
        document = json.loads(body)
        layers = [
            Descriptor(
                str(raw["mediaType"]),
                check_digest(str(raw["digest"])),
                int(raw["size"]),
                {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()},
            )
            for raw in document.get("layers") or []
        ]
    except (ValueError, KeyError, TypeError, AttributeError, InvalidArgument) as err:
        raise _SourceFailure("bad_content", f"sigstore attachment manifest {tag}: {err}") from None
    if len(layers) > MAX_SIGNATURES:
        raise _SourceFailure("bad_content", f"{tag}: more than {MAX_SIGNATURES} signatures")
    for layer in layers:
        if not 0 <= layer.size <= MAX_SIGNATURE_BYTES:
            raise _SourceFailure("bad_content", f"{tag}: signature {layer.digest} has {layer.size} bytes")
    return layers


def _digest_of(data: bytes, like: str) -> str:
    algorithm = like.partition(":")[0]
    if algorithm not in DIGEST_HEX_LENGTHS:
        return ""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _check_status(response: httpx.Response, what: str, limit: int, ok: tuple[int, ...] = (200,)) -> None:
    status = response.status_code
    if status in ok:
        return
    message = error_message(response, limit)
    detail = f"{what}: {status} {message}".rstrip()
    if status == 404:
        raise _SourceFailure("not_found", detail)
    if status in (401, 403):
        raise _SourceFailure("auth", f"{what}: authentication refused: {status} {message}".rstrip())
    if status >= 500 or status in (408, 429):
        raise _SourceFailure("unavailable", detail)
    raise _SourceFailure("bad_content", detail)


def _source_error(what: str, where: str, failure: _SourceFailure) -> PycrioError:
    return _KIND_ERRORS[failure.kind](f"{what}: {where}: {failure.message}")


@contextlib.contextmanager
def _aborted_on(cancel: Cancellation | None, response: httpx.Response) -> Iterator[None]:
    """While the block runs, cancelling shuts the response's socket down, so a read blocked on it returns."""
    if cancel is None:
        yield
        return
    with cancel.hook(lambda: _shut_down(response)):
        yield


def _shut_down(response: httpx.Response) -> None:
    """Shut the connection down (close() would not wake a thread blocked reading it; shutdown does). The
    plain socket's shutdown, not the TLS one: the TLS object stays whole for the reader to fail cleanly."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # closed already by the reader
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
