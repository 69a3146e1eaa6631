"""What a kubelet makes of a failed PullImage, through the real daemon and a registry on 127.0.0.1.

The kubelet (pkg/kubelet/images, evalCRIPullErr) shows two pull failures by name as the container's waiting
reason, RegistryUnavailable and SignatureValidationFailed, instead of ErrImagePull. It recognises them by
the first word of the error, and it reduces a status to its message only when the code is UNKNOWN
(cri-client's PullImage); with any other code the word sits behind `rpc error: code = ...` and is missed.
A kubelet registered to an API server showed exactly that on pycrio: ErrImagePull for an image the node's
signature policy refused (docs/kubelet.md).
"""

import json
from collections.abc import Iterator

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.fixtures.images import file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, free_port, registries_conf_text

REFUSED_REPOSITORY = "kubelet/refused"


@pytest.fixture(scope="module")
def pull_daemon(registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon whose signature policy rejects one repository of the test registry and accepts the rest."""
    workdir = tmp_path_factory.mktemp("kubelet-pulls")
    conf = workdir / "registries.conf"
    conf.write_text(registries_conf_text(registry, search=False))
    (workdir / "pycrio").mkdir()
    (workdir / "pycrio" / "policy.json").write_text(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {"docker": {f"{registry.host}/{REFUSED_REPOSITORY}": [{"type": "reject"}]}},
            }
        )
    )
    daemon = Daemon(
        workdir / "pycrio",
        [f'image.registries_conf="{conf}"', f'image.registries_conf_dir="{workdir / "none"}"'],
    )
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def _kubelet_pull(daemon: Daemon, image: str) -> grpc.RpcError:
    """PullImage as the kubelet sends it for a pod (the image as written, the pod's sandbox config)."""
    request = pb.PullImageRequest(
        image=pb.ImageSpec(image=image, user_specified_image=image),
        sandbox_config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="puller", uid="7f1c2a", namespace="default")
        ),
    )
    with pytest.raises(grpc.RpcError) as raised:
        daemon.client.image.PullImage(request, timeout=120)
    return raised.value


def _kubelet_reason(error: grpc.RpcError) -> str:
    """The waiting reason the kubelet derives: the first word of an UNKNOWN status's message if it is one
    of cri-api's, else ErrImagePull."""
    if error.code() == grpc.StatusCode.UNKNOWN:
        for word in ("RegistryUnavailable", "SignatureValidationFailed"):
            if str(error.details()).startswith(word):
                return word
    return "ErrImagePull"


def test_a_registry_nobody_answers_on_is_registry_unavailable(pull_daemon: Daemon) -> None:
    image = f"127.0.0.1:{free_port()}/library/busybox:1"
    error = _kubelet_pull(pull_daemon, image)
    assert _kubelet_reason(error) == "RegistryUnavailable"
    details = str(error.details())
    assert details.startswith(f"RegistryUnavailable: pulling image '{image}': ")
    assert "refused" in details.lower()


def test_an_image_the_signature_policy_refuses_is_signature_validation_failed(
    pull_daemon: Daemon, registry: RunningRegistry
) -> None:
    layers = [make_layer([file("/refused", "not for this node")])]
    pushed = push_image(Pusher(registry), REFUSED_REPOSITORY, "1", layers, image_config(layers))
    error = _kubelet_pull(pull_daemon, pushed.reference)
    assert _kubelet_reason(error) == "SignatureValidationFailed"
    assert "requirement reject" in str(error.details())
    listed = pull_daemon.client.image.ListImages(pb.ListImagesRequest()).images
    assert not [i for i in listed if pushed.reference in i.repo_tags]


def test_other_pull_failures_keep_their_codes(pull_daemon: Daemon, registry: RunningRegistry) -> None:
    """A missing image stays NOT_FOUND (ErrImagePull to the kubelet), as before."""
    error = _kubelet_pull(pull_daemon, f"{registry.host}/kubelet/absent:1")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _kubelet_reason(error) == "ErrImagePull"
