"""One fuzz sequence: random calls over a few ids, each checked for its status and time, then everything the
sequence made removed through the API. Shared by the fakes' suite and the real daemon's."""

import os
import time
from collections.abc import Callable
from typing import Any

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from domain.errors import KubeletNamed
from tests.cri_client import CriClient
from tests.fuzz.messages import METHODS, Known, request_for

BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
# UNKNOWN is deliberate for these (domain.errors.KubeletNamed): an unreachable registry, a refused signature.
KUBELET_WORDS = tuple(f"{named.word}: " for named in KubeletNamed.__subclasses__())


def fuzz_settings(examples_variable: str, default: int) -> settings:
    """Our own time budget per call instead of Hypothesis' deadline; no example database (fresh inputs
    every run); the number of examples from the environment."""
    return settings(
        max_examples=int(os.environ.get(examples_variable, str(default))),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
        database=None,
    )


CLEAN_UP_BUDGET = 60.0

SEED = {
    name: next((s, m) for s, m in METHODS if m.name == name) for name in ("RunPodSandbox", "CreateContainer")
}


def call(client: CriClient, service: str, method: str, request: Any, budget: float) -> tuple[Any, float]:
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


def check(service: str, method: str, request: Any, answer: Any, elapsed: float, budget: float) -> None:
    shown = str(request)[:500]
    assert elapsed < budget, f"{method} took {elapsed:.1f}s (budget {budget}s) for {shown}"
    if isinstance(answer, grpc.RpcError):
        deliberate = answer.code() == grpc.StatusCode.UNKNOWN and answer.details().startswith(KUBELET_WORDS)
        assert deliberate or answer.code() not in BAD_CODES, (
            f"{method} -> {answer.code().name}: {answer.details()!r}\n{shown}"
        )


def remember(method: str, answer: Any, known: Known) -> None:
    if method == "RunPodSandbox" and not isinstance(answer, grpc.RpcError):
        known.pods.append(answer.pod_sandbox_id)
    if method == "CreateContainer" and not isinstance(answer, grpc.RpcError):
        known.containers.append(answer.container_id)


def run_sequence(
    client: CriClient,
    data: st.DataObject,
    known: Known,
    calls: int,
    budget: float,
    allow_huge: bool = True,
    confine: Callable[[Any], Any] = lambda request: request,
) -> None:
    """Up to `calls` random calls (half the sequences start with a plausible pod and container), each
    checked; then everything made is removed through the API."""
    try:
        seeds = [m for m in ("RunPodSandbox", "CreateContainer") if data.draw(st.booleans(), label="seeded")]
        for _ in range(data.draw(st.integers(1, calls), label="calls")):
            service, method = (
                data.draw(st.sampled_from(METHODS), label="rpc") if not seeds else SEED[seeds.pop(0)]
            )
            request = request_for(
                data.draw,
                method.input_type,
                known,
                allow_huge=allow_huge,
                force_plausible=method.name in SEED,
            )
            request = confine(request)
            answer, elapsed = call(client, service, method.name, request, budget)
            check(service, method.name, request, answer, elapsed, budget)
            remember(method.name, answer, known)
    finally:
        clean_up(client)


def clean_up(client: CriClient) -> None:
    """Remove every container and pod through the API (what the kubelet would do)."""
    runtime, budget = client.runtime, CLEAN_UP_BUDGET
    for container in runtime.ListContainers(pb.ListContainersRequest(), timeout=budget).containers:
        runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container.id), timeout=budget)
    for sandbox in runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=budget).items:
        runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox.id), timeout=budget)
        runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox.id), timeout=budget)
