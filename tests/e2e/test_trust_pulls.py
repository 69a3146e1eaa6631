"""Signature policy on real pulls: the image service with the httpx registry adapter, the overlay layer
store, the real trust adapters (files, lookaside over file:// and HTTP, GnuPG, cryptography) and images in
the real test registry, signed by real tools (gpg keys + skopeo; cosign-format signatures written with
cryptography, see tests/fixtures/signing.py). A refused pull must leave nothing in storage.
"""

import base64
import functools
import http.server
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.registry.host_platform import host_platform
from adapters.registry.http_registry import HttpRegistry
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.overlay_layer_store import OverlayLayerStore
from adapters.trust.files import LocalTrustFiles
from adapters.trust.gpg import GpgVerifier
from adapters.trust.lookaside import LookasideStore
from adapters.trust.sigstore import SigstoreVerifier
from adapters.trust.verifier import OfflineSignatureVerifier
from domain.errors import FailedPrecondition, SignatureValidationFailed
from domain.images import ImageService
from domain.registries_conf import parse_registries_conf
from domain.trust import ACCEPTED_UNSIGNED, REJECTED, VERIFIED, ImageTrust, TrustSettings
from ports.signatures import SigstoreSignature
from tests.fakes.metrics import RecordingMetrics
from tests.fixtures.images import PushedImage, PushedImages, file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.fixtures.signing import (
    EMAIL,
    ISSUER,
    SKOPEO,
    FulcioCa,
    GpgKey,
    RekorLog,
    SigstoreKey,
    cosign_payload,
    keyless_signature,
    push_sigstore_attachment,
    run_tool,
)
from tests.storage_fixtures import unmount_all_under

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GpgKey, GpgKey]]:
    home = tmp_path_factory.mktemp("gnupg")
    trusted, other = GpgKey(home / "trusted", "trusted signer"), GpgKey(home / "other", "other signer")
    yield trusted, other
    trusted.close()
    other.close()


def push_small_image(registry: RunningRegistry, repository: str, tag: str = "1") -> PushedImage:
    """A one-layer image with unique content, so each test has its own digest."""
    layer = make_layer([file("hello", secrets.token_hex(8))])
    pusher = Pusher(registry)
    try:
        return push_image(pusher, repository, tag, [layer], image_config([layer]))
    finally:
        pusher.close()


def push_attachment(
    registry: RunningRegistry, image: PushedImage, signatures: list[SigstoreSignature]
) -> None:
    pusher = Pusher(registry)
    try:
        push_sigstore_attachment(pusher, image.repository, image.manifest_digest, signatures)
    finally:
        pusher.close()


@dataclass
class Node:
    """The trust-relevant part of a node: policy, keys, registries.d, lookaside, storage."""

    root: Path
    registry: RunningRegistry
    service: ImageService
    layers: OverlayLayerStore
    images: StateImageStore
    metrics: RecordingMetrics
    keys: tuple[GpgKey, GpgKey]

    @property
    def policy_file(self) -> Path:
        return self.root / "policy.json"

    @property
    def lookaside(self) -> Path:
        return self.root / "lookaside"

    def policy(self, scopes: dict[str, list[dict[str, object]]], path: Path | None = None) -> None:
        document = {"default": [{"type": "reject"}], "transports": {"docker": scopes}}
        (path or self.policy_file).write_text(json.dumps(document))

    def registries_d(self, text: str) -> None:
        (self.root / "registries.d" / "test.yaml").write_text(text)

    def gpg_requirement(self, identity: dict[str, str] | None = None) -> dict[str, object]:
        key = self.keys[0].write_public(self.root / "trusted.gpg")
        spec: dict[str, object] = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key)}
        return {**spec, "signedIdentity": identity} if identity else spec

    def sign_gpg(
        self, image: PushedImage, reference: str = "", digest: str = "", key: GpgKey | None = None
    ) -> None:
        """Store a skopeo-made signature in the file lookaside, under the pulled manifest's digest."""
        manifest = image.manifest
        if digest:  # sign another manifest, store it under this one
            manifest = manifest.replace(b"{", b"{ ", 1)
        signature = (key or self.keys[0]).sign(manifest, reference or image.reference, self.root / "scratch")
        where = self.lookaside / f"{image.repository}@{image.manifest_digest.replace(':', '=')}"
        where.mkdir(parents=True, exist_ok=True)
        count = len(list(where.iterdir()))
        (where / f"signature-{count + 1}").write_bytes(signature)

    def assert_nothing_stored(self) -> None:
        assert self.images.list_images() == []
        assert self.layers.list_layers() == []
        layers_dir = self.root / "storage" / "layers"
        assert not layers_dir.exists() or not any(layers_dir.iterdir())


@pytest.fixture
def node(registry: RunningRegistry, tmp_path: Path, gpg_keys: tuple[GpgKey, GpgKey]) -> Iterator[Node]:
    conf = parse_registries_conf(registries_conf_text(registry), "test")
    adapter = HttpRegistry()
    (tmp_path / "registries.d").mkdir()
    (tmp_path / "policies").mkdir()
    (tmp_path / "registries.d" / "test.yaml").write_text(
        f"default-docker:\n  lookaside: file://{tmp_path / 'lookaside'}\n"
    )
    layers = OverlayLayerStore(tmp_path / "storage", AtomicFileStateStore(tmp_path / "state"))
    images = StateImageStore(AtomicFileStateStore(tmp_path / "state"))
    metrics = RecordingMetrics()
    trust = ImageTrust(
        TrustSettings(
            str(tmp_path / "policy.json"), str(tmp_path / "policies"), str(tmp_path / "registries.d")
        ),
        LocalTrustFiles(),
        LookasideStore(timeout=30),
        adapter,
        OfflineSignatureVerifier(GpgVerifier(timeout=60), SigstoreVerifier),
        metrics,
    )
    service = ImageService(
        adapter,
        layers,
        images,
        RootfsImageUsers(layers),
        trust,
        platform=host_platform(),
        registries_conf=lambda: conf,
    )
    try:
        yield Node(tmp_path, registry, service, layers, images, metrics, gpg_keys)
    finally:
        adapter.close()
        unmount_all_under(tmp_path)


def name_of(image: PushedImage) -> str:
    return f"{image.registry}/{image.repository}"


# -- GPG simple signing -------------------------------------------------------------------------------------


def test_skopeo_copy_sign_by_then_the_signed_image_is_pulled_and_others_refused(
    node: Node, tmp_path: Path
) -> None:
    """The crictl-level scenario in-process: default reject, one repository signedBy; skopeo copies the image
    there and signs it with `--sign-by` into the lookaside; that pull works, any other fails, nothing kept."""
    source = push_small_image(node.registry, "trust/source")
    destination = f"{node.registry.host}/trust/signed:1"
    (tmp_path / "skopeo-policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    (tmp_path / "skopeo-registries.d").mkdir()
    (tmp_path / "skopeo-registries.d" / "sign.yaml").write_text(
        f"docker:\n  {node.registry.host}:\n    lookaside: file://{node.lookaside}\n"
    )
    run_tool(
        [
            SKOPEO, "copy", "--policy", str(tmp_path / "skopeo-policy.json"),
            "--registries.d", str(tmp_path / "skopeo-registries.d"),
            "--src-tls-verify=false", "--dest-tls-verify=false",
            "--sign-by", node.keys[0].fingerprint,
            f"docker://{source.reference}", f"docker://{destination}",
        ],
        env=node.keys[0].env,
    )  # fmt: skip
    node.policy({f"{node.registry.host}/trust/signed": [node.gpg_requirement()]})
    assert node.service.pull(destination)
    assert node.metrics.trust == [VERIFIED]
    pulled = node.images.list_images()
    with pytest.raises(
        SignatureValidationFailed, match=r"^SignatureValidationFailed: .*requirement reject of scope default"
    ):
        node.service.pull(source.reference)
    assert node.images.list_images() == pulled


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing signature", "a signature was required, but no signature exists"),
        ("wrong key", "GPG signature verification failed"),
        ("tampered", "GPG signature verification failed|no valid"),
        ("another digest", "does not match the manifest"),
        ("another identity", "is not accepted"),
    ],
)
def test_a_bad_gpg_signature_refuses_the_pull_and_leaves_nothing(node: Node, case: str, reason: str) -> None:
    image = push_small_image(node.registry, "trust/gpg-bad")
    node.policy({name_of(image): [node.gpg_requirement()]})
    if case == "wrong key":
        node.sign_gpg(image, key=node.keys[1])
    elif case == "another digest":
        node.sign_gpg(image, digest="other")
    elif case == "another identity":
        node.sign_gpg(image, reference=f"{name_of(image)}:2")
    elif case == "tampered":
        node.sign_gpg(image)
        (signature,) = (
            node.lookaside / f"{image.repository}@{image.manifest_digest.replace(':', '=')}"
        ).iterdir()
        data = bytearray(signature.read_bytes())
        data[len(data) // 2] ^= 0x20
        signature.write_bytes(bytes(data))
    with pytest.raises(SignatureValidationFailed, match=reason):
        node.service.pull(image.reference)
    node.assert_nothing_stored()
    assert node.metrics.trust == [REJECTED]


@pytest.mark.parametrize(
    ("identity", "signed_as", "accepted"),
    [
        ({"type": "matchExact"}, "{name}:2", False),
        ({"type": "matchRepository"}, "{name}:2", True),
        ({"type": "matchRepository"}, "{host}/trust/else:1", False),
        ({"type": "exactReference", "dockerReference": "up.test/app:v1"}, "up.test/app:v1", True),
        ({"type": "exactReference", "dockerReference": "up.test/app:v1"}, "{name}:1", False),
        ({"type": "exactRepository", "dockerRepository": "up.test/app"}, "up.test/app:v3", True),
        ({"type": "exactRepository", "dockerRepository": "up.test/app"}, "{name}:1", False),
        (
            {"type": "remapIdentity", "prefix": "{host}/trust", "signedPrefix": "up.test/t"},
            "up.test/t/gpg-id:1",
            True,
        ),
        ({"type": "remapIdentity", "prefix": "{host}/trust", "signedPrefix": "up.test/t"}, "{name}:1", False),
    ],
)
def test_gpg_signed_identity_kinds(
    node: Node, identity: dict[str, str], signed_as: str, accepted: bool
) -> None:
    image = push_small_image(node.registry, "trust/gpg-id")
    fill = functools.partial(str.format, name=name_of(image), host=node.registry.host)
    node.policy({name_of(image): [node.gpg_requirement({k: fill(v) for k, v in identity.items()})]})
    node.sign_gpg(image, reference=fill(signed_as))
    if accepted:
        node.service.pull(image.reference)
        return
    with pytest.raises(SignatureValidationFailed, match="is not accepted"):
        node.service.pull(image.reference)
    node.assert_nothing_stored()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_lookaside_served_over_http(node: Node) -> None:
    image = push_small_image(node.registry, "trust/over-http")
    node.sign_gpg(image)
    handler = functools.partial(_QuietHandler, directory=str(node.lookaside))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node.registries_d(
            f"docker:\n  {name_of(image)}:\n    lookaside: http://127.0.0.1:{server.server_port}\n"
        )
        node.policy({name_of(image): [node.gpg_requirement()]})
        node.service.pull(image.reference)
        assert node.metrics.trust == [VERIFIED]
    finally:
        server.shutdown()
        server.server_close()


# -- sigstore ------------------------------------------------------------------------------------------------


def sigstore_node(node: Node, key: SigstoreKey) -> dict[str, object]:
    node.registries_d("default-docker:\n  use-sigstore-attachments: true\n")
    (node.root / "cosign.pub").write_bytes(key.public_pem)
    return {"type": "sigstoreSigned", "keyPath": str(node.root / "cosign.pub")}


@pytest.mark.parametrize(
    "case", ["accepted", "missing signature", "wrong key", "tampered", "another digest", "another identity"]
)
def test_sigstore_key_signatures_from_registry_attachments(node: Node, case: str) -> None:
    image = push_small_image(node.registry, "trust/cosign")
    key = SigstoreKey()
    node.policy({name_of(image): [sigstore_node(node, key)]})
    payload = cosign_payload(image.manifest_digest, image.reference)
    if case == "accepted":
        push_attachment(node.registry, image, [key.sign(payload)])
        node.service.pull(image.reference)
        assert node.metrics.trust == [VERIFIED]
        return
    if case == "wrong key":
        push_attachment(node.registry, image, [SigstoreKey().sign(payload)])
    elif case == "tampered":
        signed = key.sign(payload)
        push_attachment(
            node.registry, image, [SigstoreSignature(signed.media_type, payload + b"\n", signed.annotations)]
        )
    elif case == "another digest":
        push_attachment(
            node.registry, image, [key.sign(cosign_payload("sha256:" + "1" * 64, image.reference))]
        )
    elif case == "another identity":
        push_attachment(
            node.registry, image, [key.sign(cosign_payload(image.manifest_digest, f"{name_of(image)}:2"))]
        )
    with pytest.raises(
        SignatureValidationFailed, match=r"^SignatureValidationFailed: .*requirement sigstoreSigned"
    ):
        node.service.pull(image.reference)
    node.assert_nothing_stored()
    assert node.metrics.trust == [REJECTED]


def test_sigstore_keyless_signature_with_test_fulcio_and_rekor(node: Node) -> None:
    image = push_small_image(node.registry, "trust/keyless")
    ca, rekor = FulcioCa.create(), RekorLog()
    (node.root / "fulcio.pem").write_bytes(ca.pem)
    node.registries_d("default-docker:\n  use-sigstore-attachments: true\n")
    requirement: dict[str, object] = {
        "type": "sigstoreSigned",
        "fulcio": {"caPath": str(node.root / "fulcio.pem"), "oidcIssuer": ISSUER, "subjectEmail": EMAIL},
        "rekorPublicKeyData": base64.b64encode(rekor.public_pem).decode(),
    }
    node.policy({name_of(image): [requirement]})
    payload = cosign_payload(image.manifest_digest, image.reference)
    push_attachment(
        node.registry, image, [keyless_signature(ca, rekor, payload, email="intruder@example.test")]
    )
    with pytest.raises(SignatureValidationFailed, match="required email"):
        node.service.pull(image.reference)
    node.assert_nothing_stored()
    push_attachment(
        node.registry, image, [keyless_signature(ca, rekor, payload, email="intruder@example.test"),
                               keyless_signature(ca, rekor, payload)]
    )  # fmt: skip
    node.service.pull(image.reference)


# -- policy files --------------------------------------------------------------------------------------------


def test_an_unreadable_policy_fails_the_pull_naming_the_file(node: Node) -> None:
    image = push_small_image(node.registry, "trust/unreadable")
    node.policy_file.write_text("{broken")
    with pytest.raises(FailedPrecondition, match=f"signature policy {node.policy_file}: invalid JSON"):
        node.service.pull(image.reference)
    node.policy_file.unlink()
    node.policy_file.mkdir()
    with pytest.raises(FailedPrecondition, match=f"signature policy {node.policy_file}"):
        node.service.pull(image.reference)
    node.assert_nothing_stored()


def test_a_namespace_policy_overrides_the_global_one(node: Node) -> None:
    image = push_small_image(node.registry, "trust/per-namespace")
    node.policy({})
    node.policy(
        {name_of(image): [{"type": "insecureAcceptAnything"}]}, node.root / "policies" / "team-a.json"
    )
    with pytest.raises(SignatureValidationFailed, match=str(node.policy_file)):
        node.service.pull(image.reference, namespace="team-b")
    node.assert_nothing_stored()
    node.service.pull(image.reference, namespace="team-a")
    assert node.metrics.trust == [REJECTED, ACCEPTED_UNSIGNED]
    assert os.path.exists(node.root / "policies" / "team-a.json")


def test_a_multi_platform_image_is_signed_by_its_index_digest(
    node: Node, pushed_images: PushedImages
) -> None:
    """The name points at the index: its digest is what must be signed (as skopeo copy --all signs), not the
    platform manifest the host pulls."""
    image = pushed_images.multiarch_oci
    node.policy({name_of(image): [node.gpg_requirement()]})
    child = image.platforms["linux/amd64"]
    where = node.lookaside / f"{image.repository}@{image.manifest_digest.replace(':', '=')}"
    where.mkdir(parents=True)
    (where / "signature-1").write_bytes(node.keys[0].sign(child.manifest, image.reference, node.root / "s"))
    with pytest.raises(SignatureValidationFailed, match="does not match the manifest"):
        node.service.pull(image.reference)
    node.assert_nothing_stored()
    (where / "signature-2").write_bytes(node.keys[0].sign(image.manifest, image.reference, node.root / "s"))
    node.service.pull(image.reference)
