"""Registry authentication: from a 401 challenge and the CRI AuthConfig to an Authorization header.

- `registry_token` is a bearer token for the registry itself and is sent as is.
- A Basic challenge gets username/password (or the base64 `auth` field, `user:password`).
- A Bearer challenge sends us to its realm for a token scoped to the repository: with an identity token,
  an OAuth2 POST with `grant_type=refresh_token`; otherwise a GET carrying Basic credentials when there are
  any (anonymous otherwise). Tokens are cached per realm, service, scope and credentials until they expire.
"""

import base64
import binascii
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from adapters.registry.challenge import Challenge
from adapters.registry.transport import (
    RETRYABLE_STATUS,
    RegistryLimits,
    RetryPolicy,
    SourceUnreachable,
    read_capped,
    send,
)
from domain.errors import InvalidArgument
from ports.registry import RegistryAuth

# A token without expires_in lasts 60 seconds (the distribution token spec's default).
DEFAULT_TOKEN_TTL = 60.0
# Tokens from cloud token services run to a few KiB; no credential needs more than this.
MAX_CREDENTIAL_BYTES = 64 * 1024
# What an HTTP header value can carry as is: a registry token goes into the Authorization header unencoded.
_HEADER_SAFE = frozenset(range(0x20, 0x7F))


class AuthRefused(Exception):
    """The registry or its token server refused the credentials (or their absence)."""


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def fingerprint(self) -> str:
        material = "\0".join([self.username, self.password, self.identity_token, self.registry_token])
        return hashlib.sha256(material.encode()).hexdigest()

    @property
    def has_basic(self) -> bool:
        return bool(self.username)


def credentials_from(auth: RegistryAuth | None) -> Credentials:
    """Normalise the CRI AuthConfig: `auth` (base64 user:password) fills username/password when unset."""
    if auth is None:
        return Credentials()
    for name in ("username", "password", "auth", "identity_token", "registry_token", "server_address"):
        if len(getattr(auth, name).encode()) > MAX_CREDENTIAL_BYTES:
            raise InvalidArgument(f"auth.{name}: longer than {MAX_CREDENTIAL_BYTES} bytes")
    if not set(auth.registry_token.encode()) <= _HEADER_SAFE:
        # Non-ASCII made httpx fail deep in the pull (INTERNAL); CR/LF would end the header.
        raise InvalidArgument("auth.registry_token: only printable ASCII can go into an Authorization header")
    username, password = auth.username, auth.password
    if auth.auth and not username:
        try:
            decoded = base64.b64decode(auth.auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("auth: not base64 of username:password") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidArgument("auth: decoded value has no ':' between username and password")
    return Credentials(username, password, auth.identity_token, auth.registry_token)


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class TokenCache:
    """Bearer tokens by (realm, service, scopes, credentials), dropped a little before they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple[str, str, tuple[str, ...], str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: tuple[str, str, tuple[str, ...], str]) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None or entry[1] <= self._clock():
                self._tokens.pop(key, None)
                return None
            return entry[0]

    def put(self, key: tuple[str, str, tuple[str, ...], str], token: str, ttl: float) -> None:
        with self._lock:
            # Renew 10% early so a token does not expire between use and arrival.
            self._tokens[key] = (token, self._clock() + max(ttl * 0.9, 1.0))


def fetch_token(
    client: httpx.Client,
    challenge: Challenge,
    scopes: tuple[str, ...],
    credentials: Credentials,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    limits: RegistryLimits | None = None,
) -> tuple[str, float]:
    """A bearer token from the challenge's realm, and its lifetime in seconds.

    An identity token is a refresh token for an OAuth2 POST; a token server that does not speak OAuth2
    (404 or 405 to the POST) gets it as the password of a Basic GET instead, with the username `<token>`
    when none is given, as docker's credential helpers do.
    """
    if not challenge.realm.startswith(("http://", "https://")):
        raise AuthRefused(f"bearer challenge with an unusable realm {challenge.realm!r}")
    limits = limits or RegistryLimits()
    deadline = limits.deadline()
    if credentials.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credentials.identity_token,
            "service": challenge.service,
            "client_id": "pycrio",
            "scope": " ".join(scopes),
        }
        response = send(
            client,
            "POST",
            challenge.realm,
            {"Content-Type": "application/x-www-form-urlencoded"},
            policy,
            sleep,
            content=urllib.parse.urlencode(form).encode(),
        )
        if response.status_code not in (404, 405):
            return _token_from(response, challenge, limits, deadline)
        response.close()
        credentials = Credentials(credentials.username or "<token>", credentials.identity_token)
    params: list[tuple[str, str]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    params += [("scope", scope) for scope in scopes]
    headers = {}
    if credentials.has_basic:
        params.append(("account", credentials.username))
        headers["Authorization"] = basic_header(credentials)
    separator = "&" if "?" in challenge.realm else "?"
    url = f"{challenge.realm}{separator}{urllib.parse.urlencode(params)}"
    return _token_from(send(client, "GET", url, headers, policy, sleep), challenge, limits, deadline)


def _token_from(
    response: httpx.Response, challenge: Challenge, limits: RegistryLimits, deadline: float
) -> tuple[str, float]:
    try:
        cap = limits.max_error_body_bytes
        if response.status_code in (401, 403):
            raise AuthRefused(
                f"token server {challenge.realm} refused the credentials: "
                f"{response.status_code} {error_message(response, cap)}"
            )
        if response.status_code in RETRYABLE_STATUS:
            raise SourceUnreachable(f"token server {challenge.realm} answered {response.status_code}")
        if response.status_code != 200:
            raise AuthRefused(
                f"token server {challenge.realm} answered {response.status_code} "
                f"{error_message(response, cap)}"
            )
        what = f"token from {challenge.realm}"
        body = read_capped(response, limits.max_token_bytes, what, "image.max_token_bytes", deadline)
        try:
            document = json.loads(body)
        except ValueError:
            raise AuthRefused(f"token server {challenge.realm} sent no JSON") from None
    finally:
        response.close()
    token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthRefused(f"token server {challenge.realm} sent no token")
    ttl = document.get("expires_in")
    return token, float(ttl) if isinstance(ttl, int | float) and ttl > 0 else DEFAULT_TOKEN_TTL


def error_message(response: httpx.Response, limit: int = RegistryLimits.max_error_body_bytes) -> str:
    """The registry's own words: `code: message` entries of a distribution error body, or the text. Only
    the first `limit` bytes of the body are read (image.max_error_body_bytes); a longer one is cut."""
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= limit:
                del body[limit:]
                break
    except (httpx.HTTPError, httpx.StreamError):
        return ""
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace").strip()
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors:
        parts = []
        for error in errors:
            if isinstance(error, dict):
                code = str(error.get("code", "")).lower().replace("_", " ")
                parts.append(f"{code}: {error.get('message', '')}".strip(": "))
        return "; ".join(parts)
    if isinstance(document, dict) and "details" in document:
        return str(document["details"])
    return str(document)[:200]
