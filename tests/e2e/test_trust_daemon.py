"""Image trust through the real daemon's gRPC API, as the kubelet (and crictl) pull: a node policy that
rejects by default and allows one signed repository; pulls carry the pod's sandbox config, so a
namespace's own policy file can decide instead. Signatures are made by skopeo with a gpg key.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.e2e.test_metrics_endpoint import free_port, scrape, value
from tests.e2e.test_trust_pulls import push_small_image
from tests.fixtures.images import PushedImage
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.fixtures.signing import GpgKey
from tests.storage_fixtures import tree, unmount_all_under

pytestmark = pytest.mark.root
DECISIONS = "pycrio_image_pulls_signature_decisions_total"


@pytest.fixture
def signer(tmp_path: Path) -> Iterator[GpgKey]:
    key = GpgKey(tmp_path / "gnupg", "daemon signer")
    yield key
    key.close()


@pytest.fixture
def trust_daemon(registry: RunningRegistry, signer: GpgKey, tmp_path: Path) -> Iterator[tuple[Daemon, int]]:
    workdir = tmp_path / "pycrio"
    workdir.mkdir()
    (tmp_path / "registries.conf").write_text(registries_conf_text(registry))
    key = signer.write_public(tmp_path / "signer.gpg")
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                f"{registry.host}/trust/signed": [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key)}
                ]
            }
        },
    }
    (workdir / "policy.json").write_text(json.dumps(policy))
    (workdir / "registries.d").mkdir()
    (workdir / "registries.d" / "lookaside.yaml").write_text(
        f"docker:\n  {registry.host}:\n    lookaside: file://{tmp_path / 'lookaside'}\n"
    )
    port = free_port()
    daemon = Daemon(
        workdir,
        [
            f'image.registries_conf="{tmp_path / "registries.conf"}"',
            f'image.registries_conf_dir="{tmp_path / "none"}"',
            f'network.cni_conf_dir="{tmp_path}"',
            "metrics.enabled=true",
            f"metrics.port={port}",
        ],
    ).start()
    try:
        yield daemon, port
    finally:
        daemon.stop()
        unmount_all_under(tmp_path)


def sign(signer: GpgKey, image: PushedImage, lookaside: Path) -> None:
    where = lookaside / f"{image.repository}@{image.manifest_digest.replace(':', '=')}"
    where.mkdir(parents=True)
    reference = f"{image.registry}/{image.repository}:{image.tag}"
    (where / "signature-1").write_bytes(signer.sign(image.manifest, reference, lookaside.parent / "scratch"))


def kubelet_pull(daemon: Daemon, name: str, namespace: str = "default") -> str:
    request = pb.PullImageRequest(
        image=pb.ImageSpec(image=name),
        sandbox_config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="web", uid="uid-1", namespace=namespace, attempt=0)
        ),
    )
    return str(daemon.client.image.PullImage(request, timeout=120).image_ref)


def listed(daemon: Daemon) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(
        (image.id, tuple(image.repo_tags))
        for image in daemon.client.image.ListImages(pb.ListImagesRequest()).images
    )


def test_only_the_signed_repository_can_be_pulled_and_refusals_leave_nothing(
    trust_daemon: tuple[Daemon, int], registry: RunningRegistry, signer: GpgKey, tmp_path: Path
) -> None:
    daemon, port = trust_daemon
    signed = push_small_image(registry, "trust/signed")
    sign(signer, signed, tmp_path / "lookaside")
    unsigned_in_signed_repo = push_small_image(registry, "trust/signed", "2")
    elsewhere = push_small_image(registry, "trust/elsewhere")

    image_id = kubelet_pull(daemon, f"{registry.host}/trust/signed:1")
    assert "sha256:" + image_id == signed.config_digest
    before = listed(daemon)
    layers_before = tree(daemon.workdir / "root" / "storage" / "layers")

    for name, reason in [
        (f"{registry.host}/trust/signed:2", "a signature was required, but no signature exists"),
        (f"{registry.host}/trust/elsewhere:1", "requirement reject of scope default"),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            kubelet_pull(daemon, name)
        # UNKNOWN: the kubelet reads cri-api's error word only from an UNKNOWN status (cri-o's answer too).
        assert refused.value.code() == grpc.StatusCode.UNKNOWN
        details = str(refused.value.details())
        assert details.startswith("SignatureValidationFailed: "), details
        assert reason in details and str(daemon.policy_file) in details
    assert listed(daemon) == before
    assert tree(daemon.workdir / "root" / "storage" / "layers") == layers_before

    samples = scrape(port)
    assert value(samples, DECISIONS, outcome="verified") == 1
    assert value(samples, DECISIONS, outcome="rejected") == 2
    assert value(samples, "pycrio_image_pulls_failure_total", reason="SignatureValidationFailed") == 2
    assert unsigned_in_signed_repo.manifest_digest != signed.manifest_digest and elsewhere


def test_a_namespace_policy_decides_for_its_pods(
    trust_daemon: tuple[Daemon, int], registry: RunningRegistry
) -> None:
    daemon, port = trust_daemon
    image = push_small_image(registry, "trust/team-a-only")
    name = f"{registry.host}/trust/team-a-only:1"
    (daemon.workdir / "policies" / "team-a.json").write_text(
        '{"default": [{"type": "insecureAcceptAnything"}]}'
    )
    with pytest.raises(grpc.RpcError, match="SignatureValidationFailed"):
        kubelet_pull(daemon, name, namespace="team-b")
    assert kubelet_pull(daemon, name, namespace="team-a") == image.config_digest.removeprefix("sha256:")
    assert value(scrape(port), DECISIONS, outcome="accepted_without_signature") == 1


def test_a_broken_policy_fails_pulls_with_the_file_named(
    trust_daemon: tuple[Daemon, int], registry: RunningRegistry
) -> None:
    daemon, _ = trust_daemon
    push_small_image(registry, "trust/any")
    daemon.policy_file.write_text('{"default": [{"type": "insecureAcceptAnything", "extra": 1}]}')
    with pytest.raises(grpc.RpcError) as refused:
        kubelet_pull(daemon, f"{registry.host}/trust/any:1")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"signature policy {daemon.policy_file}: " in str(refused.value.details())
    assert "unknown field extra" in str(refused.value.details())
    assert listed(daemon) == []


def test_enforcing_short_names_refuse_ambiguity_and_follow_aliases(
    trust_daemon: tuple[Daemon, int], registry: RunningRegistry, tmp_path: Path
) -> None:
    daemon, _ = trust_daemon
    image = push_small_image(registry, "trust/short")
    (daemon.workdir / "policies" / "team-a.json").write_text(
        '{"default": [{"type": "insecureAcceptAnything"}]}'
    )
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'unqualified-search-registries = ["{registry.host}", "other.invalid"]\n'
        'short-name-mode = "enforcing"\n'
        f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    with pytest.raises(grpc.RpcError) as refused:
        kubelet_pull(daemon, "trust/short:1", namespace="team-a")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "short name mode is enforcing, but image name trust/short:1 returns ambiguous list" in str(
        refused.value.details()
    )
    conf.write_text(conf.read_text() + f'[aliases]\n"trust/short" = "{registry.host}/trust/short"\n')
    assert kubelet_pull(daemon, "trust/short:1", namespace="team-a") == image.config_digest.removeprefix(
        "sha256:"
    )
