"""Every RuntimeService and ImageService RPC, one at a time, against the real daemon (runc, conmon, CNI,
overlay storage, images pulled from a registry on 127.0.0.1), with random requests built from the protobuf
descriptors (tests/fuzz/messages.py: hostile strings up to a megabyte, integers at and past their type's
edges, enum numbers the API does not define, random maps, repeated fields and nested configs). A live pod
and a running container are kept up, and their ids mixed into the requests, so that handlers get past
NOT_FOUND.

After every call: the status is never UNKNOWN or INTERNAL, Version still answers, and the listings are
consistent (every container's pod is listed; each listed pod and container answers its status call).

Deterministic (derandomized Hypothesis, a few examples per RPC) so that it can run in every `make test`.
More examples, random ones: PYCRIO_SWEEP_EXAMPLES=50 PYCRIO_SWEEP_RANDOM=1.
"""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.e2e.containers_support import remove_pods
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry, registries_settings
from tests.fuzz.messages import METHODS, Known, request_for
from tests.fuzz.real_daemon import confined, confined_daemon
from tests.fuzz.sequences import call, check

pytestmark = pytest.mark.root

BUDGET = 60.0
LIVE = {"pycrio.test/sweep": "live"}
RPCS = sorted({(service, method.name): method for service, method in METHODS}.items())

SWEEP_SETTINGS = settings(
    max_examples=int(os.environ.get("PYCRIO_SWEEP_EXAMPLES", "3")),
    derandomize=not os.environ.get("PYCRIO_SWEEP_RANDOM"),
    deadline=None,
    database=None,
    # No shrinking: against real runc and CNI it takes many minutes, and the failing request is printed whole.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Sweep:
    client: CriClient
    scratch: Path
    parent: str
    image: str  # pulled from the test registry; the live container runs it

    def live(self) -> Known:
        """The ids a request may name: a READY pod and a RUNNING container in it, made again if a call of
        the sweep stopped or removed them (as it may)."""
        runtime = self.client.runtime
        pods = runtime.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector=LIVE))
        )
        ready = [pod.id for pod in pods.items if pod.state == pb.SANDBOX_READY]
        remove_pods(self.client, [pod.id for pod in pods.items if pod.id not in ready[:1]])
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="sweep-live", uid="sweep-live", namespace="sweep"),
            log_directory=str(self.scratch / "live-logs"),
            labels=LIVE,
        )
        pod_id = (
            ready[0]
            if ready
            else runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        )
        wanted = pb.ContainerFilter(pod_sandbox_id=pod_id, label_selector=LIVE)
        containers = runtime.ListContainers(pb.ListContainersRequest(filter=wanted)).containers
        running = [c.id for c in containers if c.state == pb.CONTAINER_RUNNING]
        for container in containers:
            if container.id not in running[:1]:
                with contextlib.suppress(grpc.RpcError):
                    runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container.id))
        if not running:
            self.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=self.image)))
            container_config = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name="live"),
                image=pb.ImageSpec(image=self.image),
                command=["/bin/sleep", "1000"],
                log_path="live.log",
                labels=LIVE,
            )
            create = pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=container_config, sandbox_config=config
            )
            running = [runtime.CreateContainer(create).container_id]
            runtime.StartContainer(pb.StartContainerRequest(container_id=running[0]))
        return Known(
            pods=[pod_id],
            containers=running,
            images=[self.image, "docker.io/library/busybox:latest"],
            log_directory=str(self.scratch / "logs"),
        )

    def remove_all_but(self, known: Known) -> None:
        """What a call made (pods, containers): gone before the next example."""
        runtime = self.client.runtime
        for container in runtime.ListContainers(pb.ListContainersRequest()).containers:
            if container.id not in known.containers:
                with contextlib.suppress(grpc.RpcError):
                    runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container.id))
        pods = runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
        remove_pods(self.client, [pod.id for pod in pods if pod.id not in known.pods])


@pytest.fixture(scope="module")
def sweep(
    tmp_path_factory: pytest.TempPathFactory, registry: RunningRegistry, pushed_images: PushedImages
) -> Iterator[Sweep]:
    work = tmp_path_factory.mktemp("sweep")
    registries = registries_settings(work, registry)
    with confined_daemon(work, "sweep", "pcsweep0", "10.98.61.0/24", registries) as (client, parent):
        yield Sweep(client, work / "scratch", parent, pushed_images.busybox.reference)


def assert_consistent(client: CriClient) -> None:
    """The daemon still answers, and what it lists agrees with itself."""
    runtime = client.runtime
    assert runtime.Version(pb.VersionRequest(), timeout=BUDGET).runtime_name == "pycrio"
    pods = {pod.id for pod in runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=BUDGET).items}
    for pod_id in pods:
        status = runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=BUDGET)
        assert status.status.id == pod_id
    for container in runtime.ListContainers(pb.ListContainersRequest(), timeout=BUDGET).containers:
        assert container.pod_sandbox_id in pods, f"container {container.id} of a pod that is not listed"
        request = pb.ContainerStatusRequest(container_id=container.id)
        assert runtime.ContainerStatus(request, timeout=BUDGET).status.id == container.id
    client.image.ListImages(pb.ListImagesRequest(), timeout=BUDGET)


@pytest.mark.parametrize(("service", "method"), [key for key, _ in RPCS], ids=[name for (_, name), _ in RPCS])
@SWEEP_SETTINGS
@given(data=st.data())
def test_every_rpc_with_random_fields(sweep: Sweep, service: str, method: str, data: st.DataObject) -> None:
    descriptor: Any = dict(RPCS)[(service, method)]
    known = sweep.live()
    request = request_for(data.draw, descriptor.input_type, known)
    request = confined(request, sweep.scratch, sweep.parent)
    answer, elapsed = call(sweep.client, service, method, request, BUDGET)
    try:
        check(service, method, request, answer, elapsed, BUDGET)
        assert_consistent(sweep.client)
    finally:
        sweep.remove_all_but(known)
