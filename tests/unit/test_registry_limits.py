"""A registry cannot make pycrio read more than a cap or wait past a deadline: huge error bodies and token
answers are read only up to their cap, large manifests and configs are refused, and a manifest that drips
in is cut at the request deadline. Bodies are real streams (httpx.MockTransport over generators) that
count what was taken from them."""

import json
from collections.abc import Iterator

import httpx
import pytest

from adapters.registry.http_registry import HttpRegistry
from adapters.registry.transport import RegistryLimits, RetryPolicy
from domain.errors import DeadlineExceeded, NotFound, ResourceExhausted
from domain.registries_conf import RegistriesConf
from ports.registry import RegistryAuth
from tests.unit.test_http_registry_faults import AMD64, HOST, Handler, Image, serve

HUGE = 300 * 1024 * 1024
CHUNK = 64 * 1024
LIMITS = RegistryLimits(max_manifest_bytes=64 * 1024, max_token_bytes=16 * 1024, max_error_body_bytes=4096)


class Endless:
    """A body of `size` bytes made on demand, counting how many were taken."""

    def __init__(self, size: int = HUGE, prefix: bytes = b"") -> None:
        self.size = size
        self.prefix = prefix
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.prefix
        self.sent = len(self.prefix)
        while self.sent < self.size:
            self.sent += CHUNK
            yield b" " * CHUNK


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def adapter(
    handler: Handler, clock: FakeClock | None = None, limits: RegistryLimits = LIMITS
) -> HttpRegistry:
    return HttpRegistry(
        RegistriesConf,
        policy=RetryPolicy(attempts=1),
        transport=httpx.MockTransport(handler),
        sleep=lambda _: None,
        limits=limits,
        clock=clock or FakeClock(),
    )


def test_a_huge_error_body_is_read_only_up_to_its_cap() -> None:
    body = Endless(prefix=b'{"errors": [{"code": "MANIFEST_UNKNOWN", "message": "')
    with pytest.raises(NotFound, match="manifest"):
        adapter(lambda request: httpx.Response(404, content=body)).resolve(f"{HOST}/app:v1", None, AMD64)
    assert body.sent <= LIMITS.max_error_body_bytes + 2 * CHUNK


def test_a_huge_token_answer_is_refused_after_its_cap() -> None:
    image, token = Image(), Endless(prefix=b'{"token": "')
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            return httpx.Response(200, content=token)
        if "Authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token"'})
        return inner(request)

    with pytest.raises(ResourceExhausted, match=r"image\.max_token_bytes"):
        adapter(handler).resolve(f"{HOST}/app:v1", RegistryAuth(username="u", password="p"), AMD64)
    assert token.sent <= LIMITS.max_token_bytes + 2 * CHUNK


def test_a_huge_manifest_is_refused_after_its_cap_with_or_without_a_length() -> None:
    streamed = Endless(prefix=b'{"schemaVersion": 2, "layers": [')
    with pytest.raises(ResourceExhausted, match=r"image\.max_manifest_bytes"):
        adapter(lambda request: httpx.Response(200, content=streamed)).resolve(f"{HOST}/app:v1", None, AMD64)
    assert streamed.sent <= LIMITS.max_manifest_bytes + 2 * CHUNK
    declared = Endless()

    def announced(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(HUGE)}, content=declared)

    with pytest.raises(ResourceExhausted, match=r"image\.max_manifest_bytes"):
        adapter(announced).resolve(f"{HOST}/app:v1", None, AMD64)
    assert declared.sent <= CHUNK


def test_a_config_over_its_cap_is_not_fetched() -> None:
    image = Image()
    fetched: list[str] = []
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        return inner(request)

    small = RegistryLimits(max_config_bytes=len(image.config) - 1)
    with pytest.raises(ResourceExhausted, match=r"image\.max_config_bytes"):
        adapter(handler, limits=small).resolve(f"{HOST}/app:v1", None, AMD64)
    assert not any("/blobs/" in path for path in fetched)


def test_a_dripping_manifest_fails_at_the_request_deadline() -> None:
    image, clock = Image(), FakeClock()
    inner = serve(image)

    def drip(data: bytes) -> Iterator[bytes]:
        for byte in data:
            clock.now += 2.0  # one byte every 2 s: no stall timeout ever fires
            yield bytes([byte])

    def handler(request: httpx.Request) -> httpx.Response:
        if "/manifests/" in request.url.path:
            return httpx.Response(200, content=drip(image.manifest))
        return inner(request)

    with pytest.raises(DeadlineExceeded, match=r"image\.registry_request_deadline"):
        adapter(handler, clock).resolve(f"{HOST}/app:v1", None, AMD64)
    assert clock.now <= LIMITS.request_deadline + 2.0


def test_limits_leave_normal_images_alone() -> None:
    image = Image()
    resolved = adapter(serve(image)).resolve(f"{HOST}/app:v1", None, AMD64)
    assert json.loads(resolved.config) == json.loads(image.config)
