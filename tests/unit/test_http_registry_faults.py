"""Faults a real registry will not produce on demand, served through httpx.MockTransport: retries and
backoff, Retry-After, corrupt manifests and blobs, redirects, interrupted downloads, schema 1."""

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from adapters.registry.http_registry import HttpRegistry
from adapters.registry.transport import RetryPolicy
from domain.errors import Internal, InvalidArgument, NotFound, Unavailable
from domain.registries_conf import RegistriesConf
from ports.registry import Platform, RegistryAuth
from tests.fixtures.images import OCI_CONFIG, OCI_MANIFEST, file, image_config, make_layer
from tests.registry_sources import ConfiguredRegistry

AMD64 = Platform("linux", "amd64", "")
HOST = "registry.test"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Image:
    def __init__(self) -> None:
        self.layer = make_layer([file("data", os.urandom(100_000))])  # incompressible: many chunks
        self.config = json.dumps(image_config([self.layer])).encode()
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": digest(self.config), "size": len(self.config)},
                "layers": [self.layer.descriptor()],
            }
        ).encode()
        self.blobs = {digest(self.config): self.config, self.layer.digest: self.layer.blob}


Handler = Callable[[httpx.Request], httpx.Response]


def serve(image: Image) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/manifests/v1") or path.endswith(f"/manifests/{digest(image.manifest)}"):
            return httpx.Response(
                200,
                content=image.manifest,
                headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest(image.manifest)},
            )
        if "/blobs/" in path:
            data = image.blobs.get(path.rsplit("/", 1)[1])
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404)
        return httpx.Response(
            404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        )

    return handler


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def adapter(self, attempts: int = 4) -> ConfiguredRegistry:
        adapter = HttpRegistry(
            policy=RetryPolicy(attempts=attempts, backoff=0.5, max_backoff=8.0),
            transport=httpx.MockTransport(self),
            sleep=self.sleeps.append,
            chunk_size=4096,
        )
        return ConfiguredRegistry(adapter, RegistriesConf())


def flaky(handler: Handler, failures: list[httpx.Response | Exception]) -> Handler:
    """Answer with each prepared failure in turn, then behave."""

    def wrapped(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        return handler(request)

    return wrapped


def test_5xx_and_connection_errors_are_retried_with_backoff() -> None:
    image = Image()
    recorder = Recorder(
        flaky(serve(image), [httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(502)])
    )
    resolved = recorder.adapter().resolve(f"{HOST}/app:v1", None, AMD64)
    assert resolved.manifest_digest == digest(image.manifest)
    assert recorder.sleeps == [0.5, 1.0, 2.0]


def test_retry_after_is_honoured_and_capped() -> None:
    image = Image()
    recorder = Recorder(
        flaky(
            serve(image),
            [
                httpx.Response(429, headers={"Retry-After": "3"}),
                httpx.Response(429, headers={"Retry-After": "999"}),
            ],
        )
    )
    recorder.adapter().resolve(f"{HOST}/app:v1", None, AMD64)
    assert recorder.sleeps == [3.0, 8.0]


def test_retries_are_bounded_and_the_error_says_why() -> None:
    recorder = Recorder(lambda request: httpx.Response(503, text="overloaded"))
    with pytest.raises(Unavailable, match="503"):
        recorder.adapter(attempts=3).resolve(f"{HOST}/app:v1", None, AMD64)
    assert len(recorder.requests) == 3


def test_connection_refused_everywhere_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    recorder = Recorder(refuse)
    with pytest.raises(Unavailable, match="connection refused"):
        recorder.adapter(attempts=2).resolve(f"{HOST}/app:v1", None, AMD64)
    assert len(recorder.requests) == 2


def test_manifest_not_matching_its_digest_is_refused() -> None:
    image = Image()
    wanted = digest(image.manifest)
    image.manifest = image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion": 2 ')
    recorder = Recorder(
        lambda request: httpx.Response(200, content=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    )
    with pytest.raises(Internal, match="does not match digest"):
        recorder.adapter().resolve(f"{HOST}/app@{wanted}", None, AMD64)


def test_tag_manifest_whose_header_digest_lies_is_refused() -> None:
    image = Image()
    recorder = Recorder(
        lambda request: httpx.Response(
            200,
            content=image.manifest,
            headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest(b"x")},
        )
    )
    with pytest.raises(Internal, match="registry says digest"):
        recorder.adapter().resolve(f"{HOST}/app:v1", None, AMD64)


def test_corrupt_blob_fails_after_streaming_and_keeps_nothing_verified() -> None:
    image = Image()
    real = image.layer.blob
    recorder = Recorder(serve(image))
    adapter = recorder.adapter()
    resolved = adapter.resolve(f"{HOST}/app:v1", None, AMD64)
    image.blobs[image.layer.digest] = bytes([real[0] ^ 0xFF]) + real[1:]
    chunks: list[bytes] = []
    with pytest.raises(Internal, match="content has digest"):
        for chunk in adapter.open_blob(resolved, resolved.layers[0], None):
            chunks.append(chunk)
    assert sum(map(len, chunks)) == len(real)


def test_schema1_manifests_are_refused_with_a_reason() -> None:
    body = json.dumps({"schemaVersion": 1, "name": "app", "tag": "v1", "fsLayers": []}).encode()
    recorder = Recorder(
        lambda request: httpx.Response(
            200,
            content=body,
            headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
        )
    )
    with pytest.raises(Internal, match="schema 1"):
        recorder.adapter().resolve(f"{HOST}/app:v1", None, AMD64)


def test_blob_redirects_are_followed_without_leaking_credentials() -> None:
    image = Image()
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == HOST and "/blobs/" in request.url.path:
            return httpx.Response(307, headers={"Location": f"https://cdn.test/storage{request.url.path}"})
        return inner(request)

    recorder = Recorder(handler)
    adapter = recorder.adapter()
    auth = RegistryAuth(registry_token="secret-token")
    resolved = adapter.resolve(f"{HOST}/app:v1", auth, AMD64)
    assert b"".join(adapter.open_blob(resolved, resolved.layers[0], auth)) == image.layer.blob
    cdn = [r for r in recorder.requests if r.url.host == "cdn.test"]
    assert cdn, "the redirect was not followed"
    assert all("Authorization" not in r.headers for r in cdn)
    assert all(
        r.headers["Authorization"] == "Bearer secret-token" for r in recorder.requests if r.url.host == HOST
    )


class _BreaksAfter(httpx.SyncByteStream):
    def __init__(self, data: bytes, after: int) -> None:
        self.data, self.after = data, after

    def __iter__(self) -> Iterator[bytes]:
        yield self.data[: self.after]
        raise httpx.ReadError("connection reset by peer")


@pytest.mark.parametrize("honours_range", [True, False])
def test_interrupted_blob_download_resumes(honours_range: bool) -> None:
    image = Image()
    inner = serve(image)
    blob = image.layer.blob
    broken = {"done": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(image.layer.digest):
            if not broken["done"]:
                broken["done"] = True
                return httpx.Response(200, stream=_BreaksAfter(blob, 10000))
            offset = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
            if honours_range:
                return httpx.Response(
                    206,
                    content=blob[offset:],
                    headers={"Content-Range": f"bytes {offset}-{len(blob) - 1}/{len(blob)}"},
                )
            return httpx.Response(200, content=blob)
        return inner(request)

    recorder = Recorder(handler)
    adapter = recorder.adapter()
    resolved = adapter.resolve(f"{HOST}/app:v1", None, AMD64)
    assert b"".join(adapter.open_blob(resolved, resolved.layers[0], None)) == blob
    ranges = [r.headers.get("Range") for r in recorder.requests if r.url.path.endswith(image.layer.digest)]
    assert ranges == [None, "bytes=8192-"]  # whole 4 KiB chunks reached the consumer


def test_unknown_tag_is_not_found_with_the_registry_message() -> None:
    recorder = Recorder(serve(Image()))
    with pytest.raises(NotFound, match="manifest unknown"):
        recorder.adapter().resolve(f"{HOST}/app:nope", None, AMD64)


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        # Found by the real-daemon sweep: a non-ASCII token made PullImage fail with INTERNAL.
        (RegistryAuth(registry_token="é" * 255), "auth.registry_token"),
        (RegistryAuth(registry_token="t\r\nX-Injected: 1"), "auth.registry_token"),
        (RegistryAuth(username="u", password="p" * (64 * 1024 + 1)), "auth.password"),
    ],
)
def test_credentials_that_cannot_be_sent_are_invalid_before_any_request(
    auth: RegistryAuth, field: str
) -> None:
    recorder = Recorder(serve(Image()))
    with pytest.raises(InvalidArgument, match=f"{field}: "):
        recorder.adapter().resolve(f"{HOST}/app:v1", auth, AMD64)
    assert recorder.requests == []


def test_unicode_basic_credentials_are_sent() -> None:
    """Username and password travel base64-encoded: any unicode is fine there."""
    recorder = Recorder(serve(Image()))
    recorder.adapter().resolve(f"{HOST}/app:v1", RegistryAuth(username="ünï", password="☃"), AMD64)


def test_bearer_challenge_scope_and_service_reach_the_token_server() -> None:
    image = Image()
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            return httpx.Response(200, json={"token": "tok", "expires_in": 300})
        if request.headers.get("Authorization") != "Bearer tok":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="registry.test",'
                    'scope="repository:app:pull"'
                },
            )
        return inner(request)

    recorder = Recorder(handler)
    recorder.adapter().resolve(f"{HOST}/app:v1", RegistryAuth(username="u", password="p"), AMD64)
    token_requests = [r for r in recorder.requests if r.url.host == "auth.test"]
    assert len(token_requests) == 1
    params = token_requests[0].url.params
    assert params.get_list("scope") == ["repository:app:pull"]
    assert params["service"] == "registry.test"
    assert params["account"] == "u"
    assert token_requests[0].headers["Authorization"].startswith("Basic ")


def test_an_expired_cached_token_is_replaced() -> None:
    image = Image()
    inner = serve(image)
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            issued.append(f"tok{len(issued)}")
            return httpx.Response(200, json={"token": issued[-1], "expires_in": 3600})
        # The registry revokes tok0 right after the manifest: later requests need a fresh token.
        authorization = request.headers.get("Authorization")
        valid = authorization == "Bearer tok1" or (
            authorization == "Bearer tok0" and request.url.path.endswith("/manifests/v1")
        )
        if not valid:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token"'})
        return inner(request)

    recorder = Recorder(handler)
    adapter = recorder.adapter()
    resolved = adapter.resolve(f"{HOST}/app:v1", None, AMD64)
    assert b"".join(adapter.open_blob(resolved, resolved.layers[0], None)) == image.layer.blob
    assert issued == ["tok0", "tok1"]


def test_docker_hub_is_reached_through_its_api_host() -> None:
    recorder = Recorder(serve(Image()))
    resolved = recorder.adapter().resolve("busybox:v1", None, AMD64)
    assert resolved.name == "docker.io/library/busybox"
    assert {r.url.host for r in recorder.requests} == {"registry-1.docker.io"}


def test_a_redirect_loop_is_a_clear_error() -> None:
    recorder = Recorder(lambda request: httpx.Response(302, headers={"Location": str(request.url)}))
    with pytest.raises(Internal, match="TooManyRedirects"):
        recorder.adapter().resolve(f"{HOST}/app:v1", None, AMD64)


def test_a_body_that_does_not_decode_is_a_clear_error() -> None:
    image = Image()
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(image.layer.digest):
            return httpx.Response(200, content=b"not gzip at all", headers={"Content-Encoding": "gzip"})
        return inner(request)

    recorder = Recorder(handler)
    adapter = recorder.adapter()
    resolved = adapter.resolve(f"{HOST}/app:v1", None, AMD64)
    with pytest.raises(Internal, match="DecodingError"):
        b"".join(adapter.open_blob(resolved, resolved.layers[0], None))


def test_identity_token_falls_back_to_basic_when_the_token_server_has_no_oauth() -> None:
    image = Image()
    inner = serve(image)
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            seen.append((request.method, request.headers.get("Authorization", "")))
            if request.method == "POST":
                return httpx.Response(405)
            return httpx.Response(200, json={"token": "tok"})
        if request.headers.get("Authorization") != "Bearer tok":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token"'})
        return inner(request)

    recorder = Recorder(handler)
    recorder.adapter().resolve(f"{HOST}/app:v1", RegistryAuth(identity_token="refresh-me"), AMD64)
    expected = "Basic " + base64.b64encode(b"<token>:refresh-me").decode()
    assert seen == [("POST", ""), ("GET", expected)]


def with_signature_api(image: Image, answer: Callable[[], httpx.Response] | None) -> Handler:
    """The image, and OpenShift's signature API when `answer` is given (announced on /v2/)."""
    inner = serve(image)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            headers = {"X-Registry-Supports-Signatures": "1"} if answer is not None else {}
            return httpx.Response(200, headers=headers)
        if (
            answer is not None
            and request.url.path == f"/extensions/v2/app/signatures/{digest(image.manifest)}"
        ):
            return answer()
        return inner(request)

    return handler


def test_signatures_from_the_registry_signature_api() -> None:
    image = Image()
    listed = {
        "signatures": [
            {
                "schemaVersion": 2,
                "type": "atomic",
                "name": "x@1",
                "content": base64.b64encode(b"sig-1").decode(),
            },
            {
                "schemaVersion": 2,
                "type": "other",
                "name": "x@2",
                "content": base64.b64encode(b"skip").decode(),
            },
        ]
    }
    adapter = Recorder(with_signature_api(image, lambda: httpx.Response(200, json=listed))).adapter()
    resolved = adapter.resolve(f"{HOST}/app:v1", None, AMD64)
    assert adapter.extension_signatures(resolved, None) == [b"sig-1"]

    plain = Recorder(with_signature_api(image, None)).adapter()
    assert plain.extension_signatures(plain.resolve(f"{HOST}/app:v1", None, AMD64), None) is None

    broken = Recorder(with_signature_api(image, lambda: httpx.Response(200, content=b"{not json"))).adapter()
    with pytest.raises(Internal, match="signature list"):
        broken.extension_signatures(broken.resolve(f"{HOST}/app:v1", None, AMD64), None)
