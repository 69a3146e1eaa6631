"""The Registry contract, run against the in-memory fake and the httpx adapter talking to a real
docker-registry (distribution 2.8) in a local container. Both are asked through the domain's
registries.conf decisions (tests/registry_sources.py), as the image service asks them."""

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.registry.http_registry import HttpRegistry
from adapters.registry.transport import RetryPolicy
from domain.cancellation import Cancellation
from domain.errors import Cancelled, FailedPrecondition, Internal, InvalidArgument, NotFound, Unavailable
from domain.registries_conf import RegistriesConf, RegistryTable
from ports.registry import Descriptor, Platform, RegistryAuth
from ports.signatures import SIGSTORE_PAYLOAD_MEDIA_TYPE, SigstoreSignature
from tests.fakes.registry import InMemoryRegistry
from tests.fixtures.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    directory,
    file,
    image_config,
    make_layer,
    push_image,
    push_index,
)
from tests.fixtures.push import Pusher, PushTarget
from tests.fixtures.registry import RunningRegistry, free_port
from tests.fixtures.signing import push_sigstore_attachment
from tests.registry_sources import ConfiguredRegistry

AMD64 = Platform("linux", "amd64", "")


@dataclass
class World:
    registry: ConfiguredRegistry
    target: PushTarget
    host: str

    def repository(self) -> str:
        return f"contract/r{secrets.token_hex(4)}"


def insecure_conf(*hosts: str, search: tuple[str, ...] | None = None) -> RegistriesConf:
    return RegistriesConf(search, tuple(RegistryTable(h, h, insecure=True) for h in sorted(hosts)))


@pytest.fixture(params=["fake", "http"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "fake":
        fake = InMemoryRegistry()
        searched = ConfiguredRegistry(fake, RegistriesConf(("fake.example:5000",)))
        yield World(searched, fake.pusher("fake.example:5000"), "fake.example:5000")
        return
    running: RunningRegistry = request.getfixturevalue("registry")
    conf = insecure_conf(running.host, search=(running.host,))
    http = ConfiguredRegistry(HttpRegistry(timeout=10), lambda: conf)
    pusher = Pusher(running)
    yield World(http, pusher, running.host)
    pusher.close()
    http.close()


def small_image(
    world: World, repository: str, tag: str = "v1", oci: bool = True, marker: str = ""
) -> PushedImage:
    layer = make_layer(
        [
            directory("etc"),
            file("etc/marker", marker or repository),
            file("etc/big", secrets.token_bytes(300_000)),
        ],
        docker=not oci,
    )
    second = make_layer([file("second", "two\n")], docker=not oci)
    return push_image(world.target, repository, tag, [layer, second], image_config([layer, second]), oci=oci)


def blob_bytes(registry: ConfiguredRegistry, image: object, descriptor: Descriptor) -> bytes:
    from ports.registry import ResolvedImage

    assert isinstance(image, ResolvedImage)
    return b"".join(registry.open_blob(image, descriptor, None))


@pytest.mark.parametrize("oci", [True, False], ids=["oci", "docker"])
def test_resolve_by_tag_returns_manifest_config_and_layers(world: World, oci: bool) -> None:
    pushed = small_image(world, world.repository(), oci=oci)
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    assert resolved.name == pushed.name
    assert resolved.tag == "v1"
    assert resolved.manifest_digest == pushed.manifest_digest
    assert resolved.manifest == pushed.manifest
    assert resolved.manifest_media_type == (OCI_MANIFEST if oci else DOCKER_MANIFEST)
    assert resolved.index_digest == ""
    assert resolved.repo_digest == pushed.digest_reference
    assert resolved.config_digest == pushed.config_digest
    assert "sha256:" + hashlib.sha256(resolved.config).hexdigest() == pushed.config_digest
    assert [(d.digest, d.size, d.media_type) for d in resolved.layers] == [
        (layer.digest, layer.size, layer.media_type) for layer in pushed.layers
    ]


def test_resolve_by_digest_has_no_tag(world: World) -> None:
    pushed = small_image(world, world.repository())
    resolved = world.registry.resolve(pushed.digest_reference, None, AMD64)
    assert resolved.tag == ""
    assert resolved.manifest_digest == pushed.manifest_digest


def test_digest_wins_over_tag(world: World) -> None:
    repository = world.repository()
    first = small_image(world, repository, "one", marker="first")
    small_image(world, repository, "two", marker="second")
    resolved = world.registry.resolve(f"{world.host}/{repository}:two@{first.manifest_digest}", None, AMD64)
    assert resolved.manifest_digest == first.manifest_digest
    assert resolved.tag == ""


def test_digest_only_image_is_reachable_by_digest_only(world: World) -> None:
    pushed = small_image(world, world.repository(), tag="")
    assert (
        world.registry.resolve(pushed.digest_reference, None, AMD64).manifest_digest == pushed.manifest_digest
    )
    with pytest.raises(NotFound):
        world.registry.resolve(f"{pushed.name}:latest", None, AMD64)


def test_short_name_goes_through_the_search_registries(world: World) -> None:
    repository = world.repository()
    pushed = small_image(world, repository, "latest")
    resolved = world.registry.resolve(repository, None, AMD64)
    assert resolved.name == f"{world.host}/{repository}"
    assert resolved.tag == "latest"
    assert resolved.manifest_digest == pushed.manifest_digest


@pytest.mark.parametrize("oci", [True, False], ids=["oci-index", "docker-list"])
@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform("linux", "amd64", ""), "linux/amd64"),
        (Platform("linux", "arm64", ""), "linux/arm64/v8"),
        (Platform("linux", "arm64", "v8"), "linux/arm64/v8"),
        (Platform("linux", "aarch64", "8"), "linux/arm64/v8"),
    ],
)
def test_index_picks_the_platform(world: World, oci: bool, platform: Platform, expected: str) -> None:
    repository = world.repository()
    children = {
        name: small_image(world, repository, "", oci=oci, marker=name)
        for name in ("linux/amd64", "linux/arm64/v8")
    }
    index = push_index(world.target, repository, "multi", children, oci=oci)
    resolved = world.registry.resolve(index.reference, None, platform)
    assert resolved.manifest_digest == children[expected].manifest_digest
    assert resolved.index_digest == index.manifest_digest
    assert resolved.repo_digest == index.digest_reference
    assert resolved.manifest_media_type == (OCI_MANIFEST if oci else DOCKER_MANIFEST)
    assert index.manifest_media_type == (OCI_INDEX if oci else DOCKER_MANIFEST_LIST)


def test_index_without_the_platform_is_not_found(world: World) -> None:
    repository = world.repository()
    child = small_image(world, repository, "")
    index = push_index(world.target, repository, "multi", {"linux/amd64": child})
    with pytest.raises(NotFound, match="linux/s390x"):
        world.registry.resolve(index.reference, None, Platform("linux", "s390x", ""))


def test_unknown_tag_and_unknown_repository_are_not_found(world: World) -> None:
    pushed = small_image(world, world.repository())
    with pytest.raises(NotFound):
        world.registry.resolve(f"{pushed.name}:nope", None, AMD64)
    with pytest.raises(NotFound):
        world.registry.resolve(f"{world.host}/contract/never-pushed-{secrets.token_hex(4)}:v1", None, AMD64)
    with pytest.raises(NotFound):
        world.registry.resolve(f"{pushed.name}@sha256:{'0' * 64}", None, AMD64)


@pytest.mark.parametrize("bad", ["UPPER/case", "name:", "a" * 64, "x@sha256:short", ""])
def test_malformed_names_are_invalid(world: World, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        world.registry.resolve(bad, None, AMD64)


def test_open_blob_streams_the_exact_bytes(world: World) -> None:
    pushed = small_image(world, world.repository())
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    for layer, descriptor in zip(pushed.layers, resolved.layers, strict=True):
        assert blob_bytes(world.registry, resolved, descriptor) == layer.blob


@pytest.mark.parametrize("delta", [-1, 1])
def test_open_blob_refuses_a_size_mismatch(world: World, delta: int) -> None:
    pushed = small_image(world, world.repository())
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    real = resolved.layers[0]
    with pytest.raises(Internal):
        blob_bytes(world.registry, resolved, Descriptor(real.media_type, real.digest, real.size + delta))


def test_a_cancelled_open_blob_raises_the_reason_and_streams_nothing(world: World) -> None:
    pushed = small_image(world, world.repository())
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    cancel = Cancellation()
    cancel.cancel(Cancelled("stop"))
    with pytest.raises(Cancelled, match="stop"):
        next(iter(world.registry.open_blob(resolved, resolved.layers[0], None, cancel)))


def test_cancelling_an_open_blob_mid_stream_stops_it_with_the_reason(world: World) -> None:
    # Several of any adapter's chunks (the httpx one reads up to 1 MiB at once).
    big = make_layer([file("big", secrets.token_bytes(3 << 20))])
    pushed = push_image(world.target, world.repository(), "v1", [big], image_config([big]))
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    cancel = Cancellation()
    chunks = iter(world.registry.open_blob(resolved, resolved.layers[0], None, cancel))
    received = len(next(chunks))
    assert received < resolved.layers[0].size
    cancel.cancel(Cancelled("stop"))
    with pytest.raises(Cancelled, match="stop"):
        for chunk in chunks:
            received += len(chunk)
    # Uncancelled, the same blob streams whole.
    assert blob_bytes(world.registry, resolved, resolved.layers[0]) == pushed.layers[0].blob


def test_open_blob_of_an_unknown_digest_is_not_found(world: World) -> None:
    pushed = small_image(world, world.repository())
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    with pytest.raises(NotFound):
        blob_bytes(world.registry, resolved, Descriptor(OCI_MANIFEST, "sha256:" + "1" * 64, 10))


def test_zstd_layers_resolve_with_their_media_type(world: World) -> None:
    layer = make_layer([file("z", "zstd!\n" * 100)], "zstd")
    pushed = push_image(world.target, world.repository(), "z", [layer], image_config([layer]))
    resolved = world.registry.resolve(pushed.reference, None, AMD64)
    assert resolved.layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert blob_bytes(world.registry, resolved, resolved.layers[0]) == layer.blob


@dataclass
class SecuredWorld:
    """A registry that wants credentials, and a way to make a host blocked or unreachable."""

    registry: ConfiguredRegistry
    target: PushTarget
    host: str
    good: RegistryAuth
    blocked_registry: ConfiguredRegistry
    dead_host: str


@pytest.fixture(params=["fake", "http"])
def secured(request: pytest.FixtureRequest) -> Iterator[SecuredWorld]:
    good = RegistryAuth(username="user", password="pass")
    if request.param == "fake":
        fake = InMemoryRegistry()
        fake.set_credentials("secure.example", "user", "pass")
        fake.set_reachable("dead.example", False)
        blocked = RegistriesConf(None, (RegistryTable("secure.example", "secure.example", blocked=True),))
        yield SecuredWorld(
            ConfiguredRegistry(fake, RegistriesConf()),
            fake.pusher("secure.example"),
            "secure.example",
            good,
            ConfiguredRegistry(fake, blocked),
            "dead.example",
        )
        return
    running: RunningRegistry = request.getfixturevalue("basic_auth_registry")
    dead = f"127.0.0.1:{free_port()}"
    conf = insecure_conf(running.host, dead)
    blocked_conf = RegistriesConf(
        None, (RegistryTable(running.host, running.host, insecure=True, blocked=True),)
    )
    http = ConfiguredRegistry(
        HttpRegistry(timeout=10, policy=RetryPolicy(attempts=2, backoff=0.01)), lambda: conf
    )
    blocked_http = ConfiguredRegistry(HttpRegistry(timeout=10), lambda: blocked_conf)
    pusher = Pusher(running)
    yield SecuredWorld(
        http,
        pusher,
        running.host,
        RegistryAuth(username=running.username, password=running.password),
        blocked_http,
        dead,
    )
    pusher.close()
    http.close()
    blocked_http.close()


def secured_image(world: SecuredWorld) -> PushedImage:
    layer = make_layer([file("secret", "s\n")])
    return push_image(world.target, f"contract/s{secrets.token_hex(4)}", "v1", [layer], image_config([layer]))


def test_credentials_are_needed_and_used(secured: SecuredWorld) -> None:
    pushed = secured_image(secured)
    resolved = secured.registry.resolve(pushed.reference, secured.good, AMD64)
    assert (
        b"".join(secured.registry.open_blob(resolved, resolved.layers[0], secured.good))
        == pushed.layers[0].blob
    )
    for refused in (None, RegistryAuth(username=secured.good.username, password="wrong")):
        with pytest.raises(InvalidArgument, match="authentication refused"):
            secured.registry.resolve(pushed.reference, refused, AMD64)


def test_blocked_registry_is_refused(secured: SecuredWorld) -> None:
    pushed = secured_image(secured)
    with pytest.raises(FailedPrecondition, match="blocked"):
        secured.blocked_registry.resolve(pushed.reference, secured.good, AMD64)


def test_unreachable_registry_is_unavailable(secured: SecuredWorld) -> None:
    with pytest.raises(Unavailable, match=secured.dead_host):
        secured.registry.resolve(f"{secured.dead_host}/app:v1", None, AMD64)


def test_sigstore_attachments_of_the_name_s_digest(world: World) -> None:
    """The `sha256-<hex>.sig` tag of the digest the name points at (the index for multi-platform images)."""
    repository = world.repository()
    image = small_image(world, repository)
    resolved = world.registry.resolve(f"{world.host}/{repository}:v1", None, AMD64)
    assert world.registry.signature_attachments(resolved, None) == []
    assert world.registry.extension_signatures(resolved, None) is None  # distribution has no signature API
    signatures = [
        SigstoreSignature(
            SIGSTORE_PAYLOAD_MEDIA_TYPE, b'{"payload": 1}', {"dev.cosignproject.cosign/signature": "AA=="}
        ),
        SigstoreSignature("application/vnd.other+json", b"attestation", {}),
    ]
    push_sigstore_attachment(world.target, repository, image.manifest_digest, signatures)
    assert world.registry.signature_attachments(resolved, None) == signatures

    index = push_index(world.target, repository, "multi", {"linux/amd64": image})
    by_index = world.registry.resolve(f"{world.host}/{repository}:multi", None, AMD64)
    assert by_index.index_digest == index.manifest_digest
    assert world.registry.signature_attachments(by_index, None) == []
    push_sigstore_attachment(world.target, repository, index.manifest_digest, signatures[:1])
    assert world.registry.signature_attachments(by_index, None) == signatures[:1]
