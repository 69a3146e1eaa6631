"""Fuzz every CRI RPC against the daemon wired with fakes (fast: runs with every `make test`).

Each example is a random sequence of calls over a few ids (pods and containers made earlier in the same
sequence, their prefixes, random strings), with random fields in every request. Whatever is sent, the
daemon answers with a deliberate status, never INTERNAL or UNKNOWN, within a time budget; and once every
pod and container the sequence made is removed, the fakes hold nothing.

More examples: PYCRIO_FUZZ_EXAMPLES=2000.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.fuzz.fake_daemon import FakeHost, fake_daemon
from tests.fuzz.messages import METHODS, Known, request_for

BUDGET = 10.0  # seconds per call: every answer with fakes takes milliseconds
BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CriClient, FakeHost]]:
    with fake_daemon(tmp_path_factory.mktemp("fuzz")) as (client, host, _):
        yield client, host


def call(
    client: CriClient, service: str, method: str, request: Any, budget: float = BUDGET
) -> tuple[Any, float]:
    """(answer or RpcError, seconds taken); a stream is read to its end."""
    stub = client.runtime if service == "RuntimeService" else client.image
    started = time.monotonic()
    try:
        answer = getattr(stub, method)(request, timeout=budget)
        if not hasattr(answer, "ListFields"):
            answer = list(answer)
    except grpc.RpcError as error:
        answer = error
    return answer, time.monotonic() - started


def check(
    service: str, method: str, request: Any, answer: Any, elapsed: float, budget: float = BUDGET
) -> None:
    shown = str(request)[:500]
    assert elapsed < budget, f"{method} took {elapsed:.1f}s (budget {budget}s) for {shown}"
    if isinstance(answer, grpc.RpcError):
        assert answer.code() not in BAD_CODES, (
            f"{method} -> {answer.code().name}: {answer.details()!r}\n{shown}"
        )


def remember(method: str, answer: Any, known: Known) -> None:
    if method == "RunPodSandbox" and not isinstance(answer, grpc.RpcError):
        known.pods.append(answer.pod_sandbox_id)
    if method == "CreateContainer" and not isinstance(answer, grpc.RpcError):
        known.containers.append(answer.container_id)


def clean_up(client: CriClient) -> None:
    """Remove every container and pod through the API (what the kubelet would do)."""
    for container in client.runtime.ListContainers(pb.ListContainersRequest(), timeout=BUDGET).containers:
        client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container.id), timeout=BUDGET)
    for sandbox in client.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=BUDGET).items:
        client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox.id), timeout=BUDGET)
        client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id), timeout=BUDGET)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-logs")


SEED = {
    name: next((s, m) for s, m in METHODS if m.name == name) for name in ("RunPodSandbox", "CreateContainer")
}


@settings(
    max_examples=int(os.environ.get("PYCRIO_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
@given(data=st.data())
def test_random_calls_never_crash_hang_or_leak(
    daemon: tuple[CriClient, FakeHost], logs: Path, data: st.DataObject
) -> None:
    client, host = daemon
    known = Known(log_directory=str(logs))
    try:
        # Half the sequences start with a pod and a container made by plausible requests.
        seeds = [m for m in ("RunPodSandbox", "CreateContainer") if data.draw(st.booleans(), label="seeded")]
        for _ in range(data.draw(st.integers(1, 10), label="calls")):
            service, method = (
                data.draw(st.sampled_from(METHODS), label="rpc") if not seeds else SEED[seeds.pop(0)]
            )
            request = request_for(data.draw, method.input_type, known, force_plausible=method.name in SEED)
            answer, elapsed = call(client, service, method.name, request)
            check(service, method.name, request, answer, elapsed)
            remember(method.name, answer, known)
    finally:
        clean_up(client)
    assert host.leftovers() == {}


def test_the_fuzzed_daemon_makes_pods_and_containers(
    daemon: tuple[CriClient, FakeHost], tmp_path: Path
) -> None:
    """The suite reaches deep: a plausible request through the same daemon creates and runs for real."""
    client, host = daemon
    config = pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="n"),
                                 log_directory=str(tmp_path))  # fmt: skip
    pod_id = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    container = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="c"),
        log_path="c.log",
        image=pb.ImageSpec(image="busybox:latest"),
        command=["sleep", "1000"],
    )
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=container, sandbox_config=config)
    cid = client.runtime.CreateContainer(request).container_id
    client.runtime.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert host.runtime.machine.containers
    clean_up(client)
    assert host.leftovers() == {}
