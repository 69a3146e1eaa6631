"""Monitoring of real containers (runc, conmon) through the daemon: stats that rise while a container burns
CPU and allocates memory, every lifecycle event in order (an exit nobody caused included), OOM kills counted.

Pods use a bridge pcmon<hex> in 10.89.0.0/16 and cgroups under /pycrio-test-monitoring; the busybox image
is put into the daemon's store before it starts (no registry).
"""

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.cri_tools_metrics import CRI_TOOLS_EXPECTED, CRI_TOOLS_UNIMPLEMENTED, missing_metric_values
from tests.e2e.containers_support import container_config, pod_config, seed_busybox_image
from tests.e2e.daemon import Daemon
from tests.e2e.monitoring_support import eventually, free_port, monitoring_network, remove_cgroup_tree
from tests.pod_host import HostTestNetwork, cleanup, cleanup_run_dir, remove_cgroups

pytestmark = pytest.mark.root
MIB = 1024 * 1024
# Burns CPU from the start; once /tmp/go exists, holds 64 MiB in a shell variable and keeps burning.
BURN_THEN_ALLOCATE = (
    "while [ ! -e /tmp/go ]; do :; done; x=$(head -c 67108864 /dev/zero | tr '\\000' a); while :; do :; done"
)
# Waits for /tmp/go, then exits with 7 by itself.
EXIT_WHEN_TOLD = "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 7"


@dataclass
class World:
    daemon: Daemon
    network: HostTestNetwork
    cgroup_root: str
    logs: Path
    metrics_port: int

    @property
    def runtime(self) -> Any:
        return self.daemon.client.runtime

    def pod(self, name: str) -> tuple[str, pb.PodSandboxConfig]:
        config = pod_config(
            f"{name}-{secrets.token_hex(3)}", self.logs, cgroup_parent=f"{self.cgroup_root}/pod-{name}"
        )
        pod_id = str(self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id)
        self.network.sandbox_ids.add(pod_id)
        return pod_id, config

    def create(self, pod: tuple[str, pb.PodSandboxConfig], name: str, script: str, **fields: Any) -> str:
        reply = self.runtime.CreateContainer(
            pb.CreateContainerRequest(
                pod_sandbox_id=pod[0],
                config=container_config(name, ["/bin/sh", "-c", script], labels={"role": name}, **fields),
                sandbox_config=pod[1],
            )
        )
        return str(reply.container_id)

    def start(self, container_id: str) -> None:
        self.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))

    def tell(self, container_id: str) -> None:
        reply = self.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=container_id, cmd=["touch", "/tmp/go"], timeout=30)
        )
        assert reply.exit_code == 0, reply.stderr

    def stats(self, container_id: str) -> pb.ContainerStats:
        stats: pb.ContainerStats = self.runtime.ContainerStats(
            pb.ContainerStatsRequest(container_id=container_id)
        ).stats
        return stats

    def remove_pod(self, pod_id: str) -> None:
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def scrape(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("monitoring-containers")
    seed_busybox_image(work / "pycrio" / "root", work)
    network = monitoring_network(work)
    cgroup_root = f"/pycrio-test-monitoring/ctr-{secrets.token_hex(4)}"
    port = free_port()
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'pods.default_cgroup_parent="{cgroup_root}/default"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            "stats.period=0.5",
            "stats.disk_usage_period=0",
            "metrics.enabled=true",
            f"metrics.port={port}",
        ],
    ).start()
    created = World(daemon, network, cgroup_root, work / "logs", port)
    created.logs.mkdir()
    try:
        yield created
    finally:
        try:
            with contextlib.suppress(grpc.RpcError):
                for pod in created.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
                    created.remove_pod(pod.id)
        finally:
            daemon.stop()
            cleanup_run_dir(daemon.workdir / "run")
            cleanup(network)
            remove_cgroups(cgroup_root)
            assert remove_cgroup_tree(cgroup_root) == []


def test_container_stats_rise_while_it_burns_cpu_and_allocates_memory(world: World) -> None:
    pod = world.pod("burn")
    container_id = world.create(pod, "burner", BURN_THEN_ALLOCATE)
    world.start(container_id)
    try:
        baseline = eventually(
            lambda: world.stats(container_id),
            lambda s: s.cpu.usage_core_nano_seconds.value > 0 and s.cpu.HasField("usage_nano_cores"),
            "a first CPU rate",
        )
        world.tell(container_id)
        grown = eventually(
            lambda: world.stats(container_id),
            lambda s: s.memory.working_set_bytes.value >= baseline.memory.working_set_bytes.value + 48 * MIB,
            "the working set to grow by the 64 MiB the container holds",
        )
        assert grown.cpu.usage_core_nano_seconds.value > baseline.cpu.usage_core_nano_seconds.value
        assert grown.cpu.usage_nano_cores.value > 0
        assert grown.memory.usage_bytes.value >= baseline.memory.usage_bytes.value + 48 * MIB
        assert grown.memory.rss_bytes.value >= baseline.memory.rss_bytes.value + 48 * MIB
        assert grown.memory.page_faults.value > baseline.memory.page_faults.value
        assert grown.attributes.metadata.name == "burner"
        assert dict(grown.attributes.labels) == {"role": "burner"}
        layer = eventually(
            lambda: world.stats(container_id).writable_layer,
            lambda layer: layer.inodes_used.value > baseline.writable_layer.inodes_used.value,
            "the file the exec made to show in the writable layer",
        )
        assert layer.fs_id.mountpoint.endswith(f"/containers/{container_id}/upper")

        listed = world.runtime.ListContainerStats(
            pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(pod_sandbox_id=pod[0]))
        ).stats
        assert [s.attributes.id for s in listed] == [container_id]
        by_label = world.runtime.ListContainerStats(
            pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(label_selector={"role": "burner"}))
        ).stats
        assert [s.attributes.id for s in by_label] == [container_id]
        # Pod stats and metrics come from the last sweep, which may predate the allocation.
        pod_stats = eventually(
            lambda: world.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod[0])).stats,
            lambda s: s.linux.memory.working_set_bytes.value >= 48 * MIB,  # the pod cgroup holds it
            "the pod's working set to include the container's 64 MiB",
        )
        assert [c.attributes.id for c in pod_stats.linux.containers] == [container_id]
        assert pod_stats.linux.process.process_count.value >= 2  # infra and the container's shell

        def my_pod_metrics() -> pb.PodSandboxMetrics:
            listed = world.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
            found: pb.PodSandboxMetrics = next(m for m in listed if m.pod_sandbox_id == pod[0])
            return found

        mine = my_pod_metrics()
        (container_metrics,) = mine.container_metrics
        working_set = next(
            m for m in container_metrics.metrics if m.name == "container_memory_working_set_bytes"
        )
        assert working_set.value.value >= 48 * MIB
        # What cri-tools' "runtime should support listing pod sandbox metrics" checks.
        descriptors = world.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors
        assert {d.name for d in descriptors} >= CRI_TOOLS_EXPECTED - CRI_TOOLS_UNIMPLEMENTED
        found: dict[str, int] = {}
        for metric in [*mine.metrics, *container_metrics.metrics]:
            found.setdefault(metric.name, len(metric.label_values))
        assert missing_metric_values({d.name: len(d.label_keys) for d in descriptors}, found) == []
        values = {m.name: m.value.value for m in container_metrics.metrics if len(m.label_values) == 5}
        assert values["container_threads"] >= 1
        assert values["container_file_descriptors"] >= 3
        assert values["container_start_time_seconds"] > 0
        assert values["container_fs_inodes_total"] >= values["container_fs_inodes_free"] > 0
        assert values["container_spec_cpu_shares"] > 0
    finally:
        world.remove_pod(pod[0])


def test_event_clients_see_every_lifecycle_event_in_order_including_an_exit_nobody_caused(
    world: World,
) -> None:
    first = world.runtime.GetContainerEvents(pb.GetEventsRequest())
    second = world.runtime.GetContainerEvents(pb.GetEventsRequest())
    first.initial_metadata()
    second.initial_metadata()
    pod = world.pod("events")
    container_id = world.create(pod, "quitter", EXIT_WHEN_TOLD)
    world.start(container_id)
    world.tell(container_id)  # the container then exits by itself
    eventually(
        lambda: world.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id)).status,
        lambda s: s.state == pb.CONTAINER_EXITED,
        "the container to exit",
    )
    world.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))
    world.remove_pod(pod[0])

    expected = [
        pb.CONTAINER_CREATED_EVENT,
        pb.CONTAINER_STARTED_EVENT,
        pb.CONTAINER_STOPPED_EVENT,
        pb.CONTAINER_DELETED_EVENT,
    ]
    for stream in (first, second):
        mine: list[pb.ContainerEventResponse] = []
        pod_events: list[int] = []
        while len(pod_events) < 4:  # the pod's own events come last: everything before is in the stream
            event = next(stream)
            if event.container_id == container_id:
                mine.append(event)
            elif event.container_id == pod[0]:
                pod_events.append(event.container_event_type)
        stream.cancel()
        assert [e.container_event_type for e in mine] == expected
        assert pod_events == expected
        assert {e.pod_sandbox_status.id for e in mine} == {pod[0]}
        stopped = next(s for s in mine[2].containers_statuses if s.id == container_id)
        assert (stopped.state, stopped.exit_code) == (pb.CONTAINER_EXITED, 7)
        running = next(s for s in mine[1].containers_statuses if s.id == container_id)
        assert running.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_EXITED)
        assert all(s.id != container_id for s in mine[3].containers_statuses)


def test_an_oom_killed_container_is_counted(world: World) -> None:
    def ooms(text: str) -> float:
        line = next(
            line for line in text.splitlines() if line.startswith("pycrio_containers_oom_killed_total ")
        )
        return float(line.split()[1])

    before = ooms(world.scrape())
    pod = world.pod("oom")
    try:
        container_id = world.create(
            pod,
            "hog",
            "x=$(head -c 268435456 /dev/zero | tr '\\000' a); sleep 1000",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 * MIB)
            ),
        )
        world.start(container_id)
        status = eventually(
            lambda: (
                world.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id)).status
            ),
            lambda s: s.state == pb.CONTAINER_EXITED,
            "the memory hog to be killed",
        )
        assert status.reason == "OOMKilled"
        eventually(world.scrape, lambda text: ooms(text) >= before + 1, "the OOM kill to be counted")
    finally:
        world.remove_pod(pod[0])
