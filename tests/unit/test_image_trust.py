"""The signature policy on pulls, against fakes: every requirement type accepts and refuses as
containers/image does, a refused pull leaves nothing stored, and the decision is counted."""

import base64
import json
import re
from dataclasses import dataclass, field

import pytest

from adapters.storage.image_users import RootfsImageUsers
from domain.errors import FailedPrecondition, InvalidArgument, SignatureValidationFailed
from domain.images import ImageService
from domain.registries_d import BUILTIN_LOOKASIDE
from domain.trust import ACCEPTED_UNSIGNED, REJECTED, VERIFIED
from tests.fakes.image_store import InMemoryImageStore
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.metrics import RecordingMetrics
from tests.fakes.signatures import POLICY_PATH, FakeSigner, InMemoryLookaside, InMemoryTrustFiles, trust_with
from tests.fakes.small_registry import SmallRegistry
from tests.fixtures.signing import simple_signing_payload
from tests.layer_tars import digest, file, layer

NAME = "reg.test/team/app"
KEY, OTHER_KEY = b"trusted key", b"someone else"
APP = layer([file("app", b"v1")])
SIMPLE = "atomic container signature"
COSIGN = "cosign container image signature"


@dataclass
class Node:
    registry: SmallRegistry = field(default_factory=SmallRegistry)
    files: InMemoryTrustFiles = field(default_factory=InMemoryTrustFiles)
    lookaside: InMemoryLookaside = field(default_factory=InMemoryLookaside)
    metrics: RecordingMetrics = field(default_factory=RecordingMetrics)
    layers: InMemoryLayerStore = field(default_factory=InMemoryLayerStore)
    images: InMemoryImageStore = field(default_factory=InMemoryImageStore)

    def __post_init__(self) -> None:
        self.stored = self.registry.add(f"{NAME}:1", [APP])
        self.digest = digest(self.stored.manifest)
        self.files.files["/keys/trusted.pub"] = KEY
        self.service = ImageService(
            self.registry,
            self.layers,
            self.images,
            RootfsImageUsers(self.layers),
            trust_with(self.registry, files=self.files, lookaside=self.lookaside, observer=self.metrics),
        )

    def policy(self, requirements: list[dict[str, object]], path: str = POLICY_PATH) -> None:
        self.files.files[path] = json.dumps(
            {"default": [{"type": "reject"}], "transports": {"docker": {NAME: requirements}}}
        ).encode()

    def sign(
        self, kind: str, key: bytes = KEY, manifest_digest: str = "", reference: str = f"{NAME}:1"
    ) -> None:
        """Publish a signature: simple signing in the built-in lookaside, sigstore as an attachment."""
        manifest_digest = manifest_digest or self.digest
        if kind == "signedBy":
            payload = simple_signing_payload(manifest_digest, reference, SIMPLE)
            self.lookaside.add(f"{BUILTIN_LOOKASIDE}/team/app", self.digest, FakeSigner.simple(key, payload))
        else:
            payload = simple_signing_payload(manifest_digest, reference, COSIGN)
            self.registry.attachments.setdefault(self.digest, []).append(FakeSigner.sigstore(key, payload))

    def assert_nothing_stored(self) -> None:
        assert self.images.list_images() == [] and self.layers.list_layers() == []


def requirement(kind: str, identity: dict[str, str] | None = None) -> dict[str, object]:
    if kind == "signedBy":
        spec: dict[str, object] = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/keys/trusted.pub"}
    else:
        spec = {"type": "sigstoreSigned", "keyPath": "/keys/trusted.pub"}
    if identity:
        spec["signedIdentity"] = identity
    return spec


@pytest.fixture
def node() -> Node:
    node = Node()
    node.files.files["/etc/containers/registries.d/default.yaml"] = (
        b"default-docker:\n  use-sigstore-attachments: true\n"
    )
    return node


KINDS = ["signedBy", "sigstoreSigned"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_correctly_signed_image_is_pulled_and_counted_as_verified(node: Node, kind: str) -> None:
    node.policy([requirement(kind)])
    node.sign(kind)
    assert node.service.pull(f"{NAME}:1")
    assert node.metrics.trust == [VERIFIED]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing signature", "no signature exists"),
        ("wrong key", "is not accepted|verification failed"),
        ("tampered payload", "does not match the payload|verification failed"),
        ("another digest", "does not match the manifest"),
        ("another identity", "is not accepted for"),
    ],
)
def test_a_badly_signed_image_is_refused_and_leaves_nothing(
    node: Node, kind: str, case: str, reason: str
) -> None:
    node.policy([requirement(kind)])
    if case == "wrong key":
        node.sign(kind, key=OTHER_KEY)
    elif case == "another digest":
        node.sign(kind, manifest_digest="sha256:" + "0" * 64)
    elif case == "another identity":
        node.sign(kind, reference=f"{NAME}:2")
    elif case == "tampered payload":
        node.sign(kind)
        if kind == "signedBy":
            (url,) = node.lookaside.blobs
            node.lookaside.blobs[url] = node.lookaside.blobs[url].replace(b"team/app:1", b"team/app:2")
        else:
            (signature,) = node.registry.attachments[node.digest]
            node.registry.attachments[node.digest] = [
                type(signature)(signature.media_type, signature.payload + b" ", signature.annotations)
            ]
    with pytest.raises(SignatureValidationFailed) as refused:
        node.service.pull(f"{NAME}:1")
    message = str(refused.value)
    assert message.startswith("SignatureValidationFailed: reg.test/team/app:1: requirement ")
    assert f"of scope {NAME} in {POLICY_PATH}" in message and re.search(reason, message)
    node.assert_nothing_stored()
    assert node.metrics.trust == [REJECTED]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("identity", "signed_as", "accepted"),
    [
        ({"type": "matchExact"}, f"{NAME}:1", True),
        ({"type": "matchExact"}, f"{NAME}:2", False),
        ({"type": "matchRepoDigestOrExact"}, f"{NAME}:2", False),
        ({"type": "matchRepository"}, f"{NAME}:other", True),
        ({"type": "matchRepository"}, "reg.test/team/else:1", False),
        ({"type": "exactReference", "dockerReference": "up.test/app:v1"}, "up.test/app:v1", True),
        ({"type": "exactReference", "dockerReference": "up.test/app:v1"}, f"{NAME}:1", False),
        ({"type": "exactRepository", "dockerRepository": "up.test/app"}, "up.test/app:v9", True),
        ({"type": "exactRepository", "dockerRepository": "up.test/app"}, f"{NAME}:1", False),
        (
            {"type": "remapIdentity", "prefix": "reg.test/team", "signedPrefix": "up.test/t"},
            "up.test/t/app:1",
            True,
        ),
        (
            {"type": "remapIdentity", "prefix": "reg.test/team", "signedPrefix": "up.test/t"},
            f"{NAME}:1",
            False,
        ),
    ],
)
def test_signed_identity_decides_which_signed_names_vouch_for_the_pull(
    node: Node, kind: str, identity: dict[str, str], signed_as: str, accepted: bool
) -> None:
    node.policy([requirement(kind, identity)])
    node.sign(kind, reference=signed_as)
    if accepted:
        node.service.pull(f"{NAME}:1")
    else:
        with pytest.raises(SignatureValidationFailed, match="is not accepted"):
            node.service.pull(f"{NAME}:1")
        node.assert_nothing_stored()


def test_reject_and_accept_anything_and_all_requirements_must_pass(node: Node) -> None:
    node.policy([{"type": "insecureAcceptAnything"}])
    node.service.pull(f"{NAME}:1")
    assert node.metrics.trust == [ACCEPTED_UNSIGNED]
    other = Node()
    other.policy([{"type": "insecureAcceptAnything"}, {"type": "reject"}])
    with pytest.raises(
        SignatureValidationFailed, match=r"requirement reject .*the policy rejects this image"
    ):
        other.service.pull(f"{NAME}:1")
    other.assert_nothing_stored()
    unlisted = Node()
    unlisted.registry.add("reg.test/else:1", [APP])
    unlisted.policy([{"type": "insecureAcceptAnything"}])
    with pytest.raises(SignatureValidationFailed, match="of scope default in"):
        unlisted.service.pull("reg.test/else:1")


def test_inline_key_data_and_a_second_signature_that_verifies(node: Node) -> None:
    node.policy([{"type": "signedBy", "keyType": "GPGKeys", "keyData": base64.b64encode(KEY).decode()}])
    node.sign("signedBy", key=OTHER_KEY)
    node.sign("signedBy")
    node.service.pull(f"{NAME}:1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"{not json", "invalid JSON"),
        (b'{"default": []}', "must not be empty"),
        ("unreadable", "Permission denied"),
    ],
)
def test_a_missing_or_broken_policy_fails_the_pull_naming_the_file(
    node: Node, content: bytes | str | None, message: str
) -> None:
    del node.files.files[POLICY_PATH]
    if content == "unreadable":
        node.files.files[POLICY_PATH] = b"{}"
        node.files.unreadable.add(POLICY_PATH)
    elif isinstance(content, bytes):
        node.files.files[POLICY_PATH] = content
    with pytest.raises(FailedPrecondition, match=f"signature policy {POLICY_PATH}: .*{message}"):
        node.service.pull(f"{NAME}:1")
    node.assert_nothing_stored()
    assert node.metrics.trust == [REJECTED]


def test_a_missing_key_file_fails_the_pull(node: Node) -> None:
    node.policy([requirement("signedBy")])
    node.sign("signedBy")
    del node.files.files["/keys/trusted.pub"]
    with pytest.raises(FailedPrecondition, match=r"key file /keys/trusted\.pub: no such file"):
        node.service.pull(f"{NAME}:1")


def test_the_policy_is_read_at_each_pull(node: Node) -> None:
    node.policy([{"type": "reject"}])
    with pytest.raises(SignatureValidationFailed):
        node.service.pull(f"{NAME}:1")
    node.policy([{"type": "insecureAcceptAnything"}])
    node.service.pull(f"{NAME}:1")


def test_a_namespace_policy_wins_over_the_global_one(node: Node) -> None:
    node.policy([{"type": "reject"}])
    node.policy([{"type": "insecureAcceptAnything"}], path="/etc/pycrio/policies/team-a.json")
    node.service.pull(f"{NAME}:1", namespace="team-a")
    with pytest.raises(SignatureValidationFailed, match=f"in {POLICY_PATH}"):
        node.service.pull(f"{NAME}:1", namespace="team-b")
    with pytest.raises(SignatureValidationFailed):
        node.service.pull(f"{NAME}:1")
    with pytest.raises(InvalidArgument, match="namespace"):
        node.service.pull(f"{NAME}:1", namespace="../etc")


def test_a_digest_pull_is_checked_against_its_digest(node: Node) -> None:
    node.policy([requirement("sigstoreSigned")])
    node.sign("sigstoreSigned", reference=f"{NAME}:any-tag")
    node.service.pull(f"{NAME}@{node.digest}")
    with pytest.raises(SignatureValidationFailed):
        node.service.pull(f"{NAME}:1")


def test_a_registry_with_a_signature_api_is_asked_instead_of_the_lookaside(node: Node) -> None:
    node.policy([requirement("signedBy")])
    node.sign("signedBy")  # in the lookaside, which is not consulted now
    node.registry.extension = {}
    with pytest.raises(SignatureValidationFailed, match="no signature exists"):
        node.service.pull(f"{NAME}:1")
    (url,) = node.lookaside.blobs
    node.registry.extension = {node.digest: [node.lookaside.blobs.pop(url)]}
    node.service.pull(f"{NAME}:1")


def test_sigstore_signatures_stored_in_the_lookaside_format_are_read(node: Node) -> None:
    """The lookaside format for sigstore: `\\0sigstore-json\\n` + {mimeType, payload, annotations}."""
    node.files.files["/etc/containers/registries.d/default.yaml"] = b"default-docker: {}\n"
    node.policy([requirement("sigstoreSigned")])
    signature = FakeSigner.sigstore(KEY, simple_signing_payload(node.digest, f"{NAME}:1", COSIGN))
    blob = (
        b"\0sigstore-json\n"
        + json.dumps(
            {
                "mimeType": signature.media_type,
                "payload": base64.b64encode(signature.payload).decode(),
                "annotations": dict(signature.annotations),
            }
        ).encode()
    )
    with pytest.raises(SignatureValidationFailed, match="no signature exists"):
        node.service.pull(f"{NAME}:1")
    node.lookaside.add(f"{BUILTIN_LOOKASIDE}/team/app", node.digest, blob)
    node.service.pull(f"{NAME}:1")
