"""Images whose config is the attack, pulled from a real registry and run by the real daemon in a real pod.

A WorkingDir of `/proc/self/fd/<n>`, or a symlink in the image that leads there, made runc before 1.1.12
start the process in a directory of the host (CVE-2024-21626); the runc of the machine these tests run on
is older. CreateContainer refuses both, naming the field, and leaves no container behind; a WorkingDir
through a harmless symlink still runs. An Env entry with a NUL byte, which no process can be started with,
is refused the same way.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    pod_config,
    remove_pods,
    start_private_daemon,
    wait_exited,
)
from tests.fixtures.images import busybox_entries, image_config, make_layer, push_image, symlink
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_settings

BRIDGE = "pchimg0"


@pytest.fixture(scope="module")
def node(
    registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CriClient, Path, str, pb.PodSandboxConfig]]:
    work = tmp_path_factory.mktemp("pctest-hostile-configs")
    settings = registries_settings(work, registry)
    daemon, parent = start_private_daemon(
        work, "himg", bridge=BRIDGE, subnet="10.89.77.0/24", settings=settings
    )
    (work / "logs").mkdir()
    config = pod_config("hostile-configs", work / "logs")
    pod_id = ""
    try:
        pod_id = daemon.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        yield daemon.client, work, pod_id, config
    finally:
        remove_pods(daemon.client, [pod_id] if pod_id else [])
        daemon.stop()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        remove_cgroups(parent)
        remove_test_root_if_empty()


def push_busybox(registry: RunningRegistry, work: Path, name: str, working_dir: str, **more: Any) -> str:
    """busybox with a symlink `/work` to /proc/self/fd/7 and `/app` to /tmp, and the WorkingDir given."""
    entries = [
        *busybox_entries(work / f"scratch-{name}"),
        symlink("work", "/proc/self/fd/7"),
        symlink("app", "tmp"),
    ]
    layer = make_layer(entries)
    pusher = Pusher(registry)
    try:
        config = image_config([layer], Cmd=["/bin/sh", "-c", "pwd"], WorkingDir=working_dir, **more)
        image = push_image(pusher, f"pycrio/hostile-config-{name}", "latest", [layer], config)
    finally:
        pusher.close()
    return image.reference


def create(client: CriClient, pod_id: str, pod: pb.PodSandboxConfig, name: str, image: str) -> str:
    client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=120)
    config = container_config(name, [])
    config.image.image = image
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    return str(client.runtime.CreateContainer(request).container_id)


@pytest.mark.parametrize(
    ("working_dir", "shown"),
    [
        ("/proc/self/fd/7", "'/proc/self/fd/7' is in /proc"),
        ("/work", "'/work' (resolving to '/proc/self/fd/7')"),
    ],
    ids=["proc fd", "symlink to proc fd"],
)
def test_a_working_dir_in_proc_is_refused(
    node: tuple[CriClient, Path, str, pb.PodSandboxConfig],
    registry: RunningRegistry,
    working_dir: str,
    shown: str,
) -> None:
    client, work, pod_id, pod = node
    image = push_busybox(registry, work, working_dir.strip("/").replace("/", "-"), working_dir)
    with pytest.raises(grpc.RpcError) as failure:
        create(client, pod_id, pod, "leaky", image)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value.details()
    assert f"WorkingDir): {shown}" in str(failure.value.details())
    assert list(client.runtime.ListContainers(pb.ListContainersRequest()).containers) == []


def test_a_working_dir_through_a_harmless_symlink_runs_there(
    node: tuple[CriClient, Path, str, pb.PodSandboxConfig], registry: RunningRegistry
) -> None:
    client, work, pod_id, pod = node
    image = push_busybox(registry, work, "app", "/app")
    container_id = create(client, pod_id, pod, "fine", image)
    client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
    assert wait_exited(client, container_id).exit_code == 0
    assert (work / "logs" / "fine.log").read_text().split()[-1] == "/tmp"
    client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))


def test_an_image_env_with_a_nul_byte_is_refused_naming_it(
    node: tuple[CriClient, Path, str, pb.PodSandboxConfig], registry: RunningRegistry
) -> None:
    client, work, pod_id, pod = node
    image = push_busybox(registry, work, "nul-env", "/", Env=["PATH=/bin", "EVIL=a\u0000b"])
    with pytest.raises(grpc.RpcError) as failure:
        create(client, pod_id, pod, "nul", image)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value.details()
    assert "image config Env[1]: holds a NUL byte" in str(failure.value.details())
    assert list(client.runtime.ListContainers(pb.ListContainersRequest()).containers) == []
