"""Fuzz every CRI RPC against the daemon wired with fakes (fast: runs with every `make test`).

Each example is a random sequence of calls over a few ids (pods and containers made earlier in the same
sequence, their prefixes, random strings), with random fields in every request. Whatever is sent, the
daemon answers with a deliberate status, never INTERNAL or UNKNOWN, within a time budget; and once every
pod and container the sequence made is removed, the fakes hold nothing.

More examples: PYCRIO_FUZZ_EXAMPLES=2000.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.fuzz.fake_daemon import FakeHost, fake_daemon
from tests.fuzz.messages import Known
from tests.fuzz.sequences import clean_up, fuzz_settings, run_sequence

BUDGET = 10.0  # seconds per call: every answer with fakes takes milliseconds


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CriClient, FakeHost]]:
    with fake_daemon(tmp_path_factory.mktemp("fuzz")) as (client, host, _):
        yield client, host


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-logs")


@fuzz_settings("PYCRIO_FUZZ_EXAMPLES", 60)
@given(data=st.data())
def test_random_calls_never_crash_hang_or_leak(
    daemon: tuple[CriClient, FakeHost], logs: Path, data: st.DataObject
) -> None:
    client, host = daemon
    run_sequence(client, data, Known(log_directory=str(logs)), calls=10, budget=BUDGET)
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
