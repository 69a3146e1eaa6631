"""Sending registry requests with bounded retries: connection errors, 429 and 5xx back off and try again.

A registry that is down, overloaded or flaky must not fail a pull on its first hiccup, nor hang it forever:
every request has httpx timeouts, a fixed number of attempts and a capped exponential backoff that honours
`Retry-After`. TLS failures are not retried (the same certificate will fail the same way).
"""

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import structlog

from adapters.tracing.spans import span
from domain.errors import DeadlineExceeded, ResourceExhausted

_log = structlog.get_logger("pycrio.registry")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class SourceUnreachable(Exception):
    """The registry could not be reached (or kept failing) after every attempt."""


@dataclass(frozen=True)
class RegistryLimits:
    """What a registry may make pycrio read or wait for; each error names the config key that sets it."""

    max_manifest_bytes: int = 4 * 1024 * 1024
    max_config_bytes: int = 8 * 1024 * 1024
    max_token_bytes: int = 1024 * 1024
    max_error_body_bytes: int = 64 * 1024
    # Seconds for one request of a manifest, index, config or token, body included.
    request_deadline: float = 120.0

    def deadline(self, clock: Callable[[], float] = time.monotonic) -> float:
        return clock() + self.request_deadline


def read_capped(
    response: httpx.Response,
    limit: int,
    what: str,
    key: str,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """A streamed response's body, read only up to `limit` bytes: ResourceExhausted past it (naming the
    config `key`), DeadlineExceeded once `deadline` (a `clock` time) has passed, however steadily the bytes
    come. httpx's own timeouts still end a body that stops altogether."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResourceExhausted(f"{what} is {declared} bytes, more than {limit} (config key {key})")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise ResourceExhausted(f"{what} is larger than {limit} bytes (config key {key})")
        if deadline is not None and clock() > deadline:
            raise DeadlineExceeded(
                f"{what} was not received in time (config key image.registry_request_deadline)"
            )
    return bytes(body)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return float(min(self.backoff * (2**attempt), self.max_backoff))


def is_tls_error(error: Exception) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "SSL" in str(error) or "certificate" in str(error).lower()


def describe(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def send(
    client: httpx.Client,
    method: str,
    url: str,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    stream: bool = True,
    content: bytes | None = None,
) -> httpx.Response:
    """The first response that is not retryable, or the last one once attempts run out.

    Raises SourceUnreachable when every attempt failed at the connection level. The body is not read (a
    registry decides how large it is): the caller reads it with `read_capped` and closes the response.
    """
    with span(f"registry.{method}", **{"http.method": method, "url.full": url}):
        return _send(client, method, url, headers, policy, sleep, stream, content)


def _send(
    client: httpx.Client,
    method: str,
    url: str,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    stream: bool,
    content: bytes | None,
) -> httpx.Response:
    last_error = ""
    for attempt in range(policy.attempts):
        try:
            request = client.build_request(method, url, headers=dict(headers), content=content)
            response = client.send(request, stream=stream)
        except httpx.TransportError as err:
            last_error = describe(err)
            if is_tls_error(err) or attempt == policy.attempts - 1:
                break
            _log.info("registry request failed, retrying", url=url, error=last_error, attempt=attempt + 1)
            sleep(policy.delay(attempt))
            continue
        if response.status_code not in RETRYABLE_STATUS or attempt == policy.attempts - 1:
            return response
        retry_after = response.headers.get("Retry-After")
        response.close()
        _log.info("registry answered, retrying", url=url, status=response.status_code, attempt=attempt + 1)
        sleep(policy.delay(attempt, retry_after))
    raise SourceUnreachable(f"{last_error} (after {attempt + 1} attempt{'s' if attempt else ''})")
