"""What only the httpx adapter does, against real registries: Basic and Bearer auth, TLS, mirrors, search
order, blocked registries, unreachable sources, and registries.conf files on disk."""

import base64
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from adapters.registry.conf_files import load_registries_conf
from adapters.registry.http_registry import HttpRegistry
from adapters.registry.transport import RegistryLimits, RetryPolicy
from domain.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from domain.registries_conf import Endpoint, RegistriesConf, RegistryTable
from ports.registry import Platform, RegistryAuth, ResolvedImage
from tests.fixtures.images import PushedImage, file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, free_port
from tests.registry_sources import ConfiguredRegistry

AMD64 = Platform("linux", "amd64", "")
FAST = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01)


def insecure(*hosts: str, search: tuple[str, ...] | None = None) -> RegistriesConf:
    return RegistriesConf(search, tuple(RegistryTable(h, h, insecure=True) for h in sorted(hosts)))


def push_small(registry: RunningRegistry, repository: str, tag: str = "v1") -> PushedImage:
    layer = make_layer([file("hello", f"{repository}\n")])
    pusher = Pusher(registry)
    try:
        return push_image(pusher, repository, tag, [layer], image_config([layer]))
    finally:
        pusher.close()


def fetch_all(adapter: ConfiguredRegistry, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes]:
    return [b"".join(adapter.open_blob(image, layer, auth)) for layer in image.layers]


@pytest.fixture
def adapter_for() -> Iterator[list[ConfiguredRegistry]]:
    made: list[ConfiguredRegistry] = []
    yield made
    for adapter in made:
        adapter.close()


def make(made: list[ConfiguredRegistry], conf: RegistriesConf) -> ConfiguredRegistry:
    adapter = ConfiguredRegistry(HttpRegistry(timeout=10, policy=FAST), lambda: conf)
    made.append(adapter)
    return adapter


# -- Basic auth --------------------------------------------------------------------------------------------


def test_basic_auth_with_username_and_password(
    basic_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(basic_auth_registry, "basic/app")
    adapter = make(adapter_for, insecure(basic_auth_registry.host))
    auth = RegistryAuth(username=basic_auth_registry.username, password=basic_auth_registry.password)
    resolved = adapter.resolve(pushed.reference, auth, AMD64)
    assert resolved.manifest_digest == pushed.manifest_digest
    assert fetch_all(adapter, resolved, auth) == [layer.blob for layer in pushed.layers]


def test_basic_auth_with_the_base64_auth_field(
    basic_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(basic_auth_registry, "basic/encoded")
    encoded = base64.b64encode(
        f"{basic_auth_registry.username}:{basic_auth_registry.password}".encode()
    ).decode()
    adapter = make(adapter_for, insecure(basic_auth_registry.host))
    assert adapter.resolve(pushed.reference, RegistryAuth(auth=encoded), AMD64).manifest_digest == (
        pushed.manifest_digest
    )


@pytest.mark.parametrize(
    "auth", [None, RegistryAuth(username="reguser", password="wrong")], ids=["anonymous", "wrong-password"]
)
def test_basic_auth_refusal_is_a_clear_error(
    basic_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry], auth: RegistryAuth | None
) -> None:
    pushed = push_small(basic_auth_registry, "basic/refused")
    adapter = make(adapter_for, insecure(basic_auth_registry.host))
    with pytest.raises(InvalidArgument, match="authentication refused: 401 unauthorized"):
        adapter.resolve(pushed.reference, auth, AMD64)


# -- Bearer tokens -----------------------------------------------------------------------------------------


def test_bearer_token_from_username_and_password_is_cached(
    token_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    server = token_auth_registry.token_server
    assert server is not None
    pushed = push_small(token_auth_registry, "token/app")
    adapter = make(adapter_for, insecure(token_auth_registry.host))
    auth = RegistryAuth(username=token_auth_registry.username, password=token_auth_registry.password)
    before = len(server.requests)
    resolved = adapter.resolve(pushed.reference, auth, AMD64)
    assert fetch_all(adapter, resolved, auth) == [layer.blob for layer in pushed.layers]
    adapter.resolve(pushed.reference, auth, AMD64)
    fetched = server.requests[before:]
    assert len(fetched) == 1, fetched
    assert fetched[0].method == "GET"
    assert fetched[0].account == token_auth_registry.username
    assert fetched[0].scopes == ["repository:token/app:pull"]
    assert fetched[0].service == server.service


def test_bearer_token_from_an_identity_token(
    token_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    server = token_auth_registry.token_server
    assert server is not None
    pushed = push_small(token_auth_registry, "token/identity")
    adapter = make(adapter_for, insecure(token_auth_registry.host))
    identity = next(iter(server.refresh_tokens))
    before = len(server.requests)
    resolved = adapter.resolve(pushed.reference, RegistryAuth(identity_token=identity), AMD64)
    assert resolved.manifest_digest == pushed.manifest_digest
    assert [(r.method, r.grant_type) for r in server.requests[before:]] == [("POST", "refresh_token")]


def test_registry_token_is_used_directly(
    token_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    server = token_auth_registry.token_server
    assert server is not None
    pushed = push_small(token_auth_registry, "token/direct")
    token = server.issue("tokenuser", ["repository:token/direct:pull"])
    adapter = make(adapter_for, insecure(token_auth_registry.host))
    before = len(server.requests)
    resolved = adapter.resolve(pushed.reference, RegistryAuth(registry_token=token), AMD64)
    assert fetch_all(adapter, resolved, RegistryAuth(registry_token=token)) == [
        layer.blob for layer in pushed.layers
    ]
    assert server.requests[before:] == []


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [
        (None, "authentication refused"),
        (RegistryAuth(username="tokenuser", password="wrong"), "refused the credentials"),
        (RegistryAuth(identity_token="not-a-refresh-token"), "refused the credentials"),
    ],
    ids=["anonymous", "wrong-password", "bad-identity-token"],
)
def test_bearer_refusals_are_clear_errors(
    token_auth_registry: RunningRegistry,
    adapter_for: list[ConfiguredRegistry],
    auth: RegistryAuth | None,
    fragment: str,
) -> None:
    pushed = push_small(token_auth_registry, "token/refused")
    adapter = make(adapter_for, insecure(token_auth_registry.host))
    with pytest.raises(InvalidArgument, match=fragment):
        adapter.resolve(pushed.reference, auth, AMD64)


# -- TLS ---------------------------------------------------------------------------------------------------


def test_insecure_registry_accepts_an_unverified_certificate(
    tls_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(tls_registry, "tls/app")
    adapter = make(adapter_for, insecure(tls_registry.host))
    resolved = adapter.resolve(pushed.reference, None, AMD64)
    assert fetch_all(adapter, resolved, None) == [layer.blob for layer in pushed.layers]


def test_secure_registry_refuses_an_unverified_certificate(
    tls_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(tls_registry, "tls/secure")
    adapter = make(adapter_for, RegistriesConf())
    with pytest.raises(Unavailable, match=r"(?i)certificate"):
        adapter.resolve(pushed.reference, None, AMD64)


def test_plain_http_registry_needs_insecure(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(registry, "plain/needs-insecure")
    with pytest.raises(Unavailable):
        make(adapter_for, RegistriesConf()).resolve(pushed.reference, None, AMD64)


# -- Mirrors, search registries, blocked, unreachable ------------------------------------------------------


def test_mirrors_are_tried_in_order_before_the_origin(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(registry, "mirror/team/app")
    dead_mirror, dead_origin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    conf = RegistriesConf(
        None,
        (
            RegistryTable(
                "example.test/team",
                f"{dead_origin}/team",
                insecure=True,
                mirrors=(Endpoint(f"{dead_mirror}/m0", True), Endpoint(f"{registry.host}/mirror/team", True)),
            ),
        ),
    )
    adapter = make(adapter_for, conf)
    resolved = adapter.resolve("example.test/team/app:v1", None, AMD64)
    assert resolved.name == "example.test/team/app"
    assert resolved.source == f"{registry.host}/mirror/team/app"
    assert fetch_all(adapter, resolved, None) == [layer.blob for layer in pushed.layers]

    with pytest.raises(Unavailable) as failed:
        adapter.resolve("example.test/team/absent:v1", None, AMD64)
    message = str(failed.value)
    for source in (
        f"{dead_mirror}/m0/absent",
        f"{registry.host}/mirror/team/absent",
        f"{dead_origin}/team/absent",
    ):
        assert source in message
    assert message.index(dead_mirror) < message.index(registry.host) < message.index(dead_origin)


def test_short_names_try_each_search_registry_in_order(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    repository = f"search/app{secrets.token_hex(3)}"
    pushed = push_small(registry, repository, "latest")
    dead = f"127.0.0.1:{free_port()}"
    adapter = make(adapter_for, insecure(dead, registry.host, search=(dead, registry.host)))
    resolved = adapter.resolve(repository, None, AMD64)
    assert resolved.name == f"{registry.host}/{repository}"
    assert resolved.manifest_digest == pushed.manifest_digest


def test_not_found_everywhere_is_not_found(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    adapter = make(adapter_for, insecure(registry.host, search=(registry.host,)))
    with pytest.raises(NotFound, match="search/never-pushed"):
        adapter.resolve("search/never-pushed", None, AMD64)


def test_blocked_registry_is_a_failed_precondition(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(registry, "blocked/app")
    conf = RegistriesConf(None, (RegistryTable(registry.host, registry.host, insecure=True, blocked=True),))
    with pytest.raises(FailedPrecondition, match="blocked"):
        make(adapter_for, conf).resolve(pushed.reference, None, AMD64)


def test_unreachable_registry_is_unavailable_after_retries(adapter_for: list[ConfiguredRegistry]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(Unavailable, match=dead):
        make(adapter_for, insecure(dead)).resolve(f"{dead}/app:v1", None, AMD64)


def test_registries_conf_files_on_disk(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry], tmp_path: Path
) -> None:
    pushed = push_small(registry, "files/app", "latest")
    main = tmp_path / "registries.conf"
    main.write_text('unqualified-search-registries = ["docker.io"]\n')
    drop_ins = tmp_path / "registries.conf.d"
    drop_ins.mkdir()
    (drop_ins / "50-test.conf").write_text(
        f'unqualified-search-registries = ["{registry.host}"]\n\n[[registry]]\nlocation = "{registry.host}"\n'
        "insecure = true\n"
    )
    (drop_ins / "ignored.txt").write_text("not toml at all [")
    adapter = ConfiguredRegistry(
        HttpRegistry(timeout=10, policy=FAST), lambda: load_registries_conf(main, drop_ins)
    )
    adapter_for.append(adapter)
    assert adapter.resolve("files/app", None, AMD64).manifest_digest == pushed.manifest_digest

    (drop_ins / "60-broken.conf").write_text("[[registry]]\nprefix = 'x'\n")
    with pytest.raises(FailedPrecondition, match=r"60-broken\.conf"):
        adapter.resolve("files/app", None, AMD64)


# -- Redirects and concurrency -----------------------------------------------------------------------------


class _Redirector:
    """An HTTP server on 127.0.0.1 that answers every request with a 307 to the same path on `target`."""

    def __init__(self, target: str) -> None:
        target_url = target

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(307)
                self.send_header("Location", f"{target_url}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_redirects_are_followed_to_the_real_registry(
    registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = push_small(registry, "redirect/app")
    redirector = _Redirector(registry.url)
    try:
        adapter = make(adapter_for, insecure(redirector.host, registry.host))
        resolved = adapter.resolve(f"{redirector.host}/redirect/app:v1", None, AMD64)
        assert resolved.manifest_digest == pushed.manifest_digest
        assert fetch_all(adapter, resolved, None) == [layer.blob for layer in pushed.layers]
    finally:
        redirector.close()


def test_concurrent_pulls_share_one_adapter(
    token_auth_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry]
) -> None:
    pushed = [push_small(token_auth_registry, f"token/concurrent{i}") for i in range(4)]
    adapter = make(adapter_for, insecure(token_auth_registry.host))
    auth = RegistryAuth(username=token_auth_registry.username, password=token_auth_registry.password)

    def pull(image: PushedImage) -> bool:
        resolved = adapter.resolve(image.reference, auth, AMD64)
        return fetch_all(adapter, resolved, auth) == [layer.blob for layer in image.layers]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(pull, pushed * 3))


def test_certs_d_makes_a_private_ca_trusted(
    tls_registry: RunningRegistry, adapter_for: list[ConfiguredRegistry], tmp_path: Path
) -> None:
    assert tls_registry.ca_cert is not None
    pushed = push_small(tls_registry, "tls/private-ca")
    certs_d = tmp_path / "certs.d"
    (certs_d / tls_registry.host).mkdir(parents=True)
    (certs_d / tls_registry.host / "ca.crt").write_bytes(tls_registry.ca_cert.read_bytes())
    adapter = ConfiguredRegistry(HttpRegistry(timeout=10, policy=FAST, certs_dirs=[certs_d]), RegistriesConf)
    adapter_for.append(adapter)
    resolved = adapter.resolve(pushed.reference, None, AMD64)
    assert fetch_all(adapter, resolved, None) == [layer.blob for layer in pushed.layers]

    (certs_d / tls_registry.host / "client.cert").write_text("no key beside it")
    with pytest.raises(FailedPrecondition, match="without its key"):
        adapter.resolve(pushed.reference, None, AMD64)


def test_a_stalled_blob_times_out_and_fails_as_unavailable(
    registry: RunningRegistry, stalling_registry: RunningRegistry
) -> None:
    layer = make_layer([file("big", secrets.token_bytes(200_000))])
    pusher = Pusher(registry)
    try:
        pushed = push_image(pusher, "stall/app", "v1", [layer], image_config([layer]))
    finally:
        pusher.close()
    # The read timeout also covers the manifest, which the proxy fetches whole before it answers: on a
    # loaded host that can take seconds, and only the stalled blob may trip it.
    adapter = ConfiguredRegistry(
        HttpRegistry(timeout=10.0, policy=FAST), lambda: insecure(stalling_registry.host)
    )
    try:
        resolved = adapter.resolve(f"{stalling_registry.host}/stall/app:v1", None, AMD64)
        assert resolved.manifest_digest == pushed.manifest_digest
        received: list[bytes] = []
        with pytest.raises(Unavailable, match="ReadTimeout"):
            for chunk in adapter.open_blob(resolved, resolved.layers[0], None):
                received.append(chunk)
        assert sum(map(len, received)) < layer.size
    finally:
        adapter.close()


def test_a_dripping_manifest_ends_at_the_request_deadline(
    registry: RunningRegistry, dripping_registry: RunningRegistry
) -> None:
    push_small(registry, "drip/app")
    # The read timeout is longer than the drip: only the overall deadline can end this request.
    adapter = ConfiguredRegistry(
        HttpRegistry(timeout=10, policy=FAST, limits=RegistryLimits(request_deadline=5.0)),
        insecure(dripping_registry.host),
    )
    try:
        with pytest.raises(DeadlineExceeded, match=r"image\.registry_request_deadline"):
            adapter.resolve(f"{dripping_registry.host}/drip/app:v1", None, AMD64)
    finally:
        adapter.close()
