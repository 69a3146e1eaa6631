"""The workloads and the per-runtime driver against an in-process fake CRI server (no root, no runtime).

They prove the classification the report relies on: every row ok against a runtime that serves every
RPC, "unsupported" for UNIMPLEMENTED, "failed" for other errors and wrong answers, and that pods made
by a failed workload are removed.
"""

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.generated import api_pb2_grpc
from bench import cli
from bench.profiles import Profile
from bench.registry import LocalRegistry
from bench.results import Round
from bench.runtimes import ExternalRuntime, RunPlan, bench_runtime
from bench.workloads import PullTarget

TINY = Profile(
    name="tiny",
    lifecycle_iterations=3,
    exec_iterations=3,
    pull_images=2,
    pull_layer_bytes=1024,
    fleet_pods=2,
    list_iterations=2,
    rounds=1,
    density_pods=3,
    idle_seconds=0.05,
)


class FakeRuntime(api_pb2_grpc.RuntimeServiceServicer):
    """Pods and containers as dict entries; enough of the CRI for every workload."""

    def __init__(self, exec_output: bytes = b"hello\n") -> None:
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.pods: dict[str, pb.PodSandboxConfig] = {}
        self.containers: dict[str, str] = {}  # container id -> pod id
        self.exec_output = exec_output

    def _id(self, kind: str) -> str:
        with self.lock:
            return f"{kind}{next(self.ids)}"

    def Version(self, request: Any, context: Any) -> pb.VersionResponse:
        return pb.VersionResponse(version="0.1.0", runtime_name="fake", runtime_version="1")

    def Status(self, request: Any, context: Any) -> pb.StatusResponse:
        conditions = [
            pb.RuntimeCondition(type=kind, status=True) for kind in ("RuntimeReady", "NetworkReady")
        ]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))

    def RunPodSandbox(self, request: Any, context: Any) -> pb.RunPodSandboxResponse:
        pod_id = self._id("pod")
        with self.lock:
            self.pods[pod_id] = request.config
        return pb.RunPodSandboxResponse(pod_sandbox_id=pod_id)

    def StopPodSandbox(self, request: Any, context: Any) -> pb.StopPodSandboxResponse:
        return pb.StopPodSandboxResponse()

    def RemovePodSandbox(self, request: Any, context: Any) -> pb.RemovePodSandboxResponse:
        with self.lock:
            self.pods.pop(request.pod_sandbox_id, None)
            for container_id in [c for c, pod in self.containers.items() if pod == request.pod_sandbox_id]:
                del self.containers[container_id]
        return pb.RemovePodSandboxResponse()

    def ListPodSandbox(self, request: Any, context: Any) -> pb.ListPodSandboxResponse:
        with self.lock:
            return pb.ListPodSandboxResponse(items=[pb.PodSandbox(id=pod_id) for pod_id in self.pods])

    def CreateContainer(self, request: Any, context: Any) -> pb.CreateContainerResponse:
        container_id = self._id("ctr")
        with self.lock:
            self.containers[container_id] = request.pod_sandbox_id
        return pb.CreateContainerResponse(container_id=container_id)

    def StartContainer(self, request: Any, context: Any) -> pb.StartContainerResponse:
        return pb.StartContainerResponse()

    def StopContainer(self, request: Any, context: Any) -> pb.StopContainerResponse:
        return pb.StopContainerResponse()

    def RemoveContainer(self, request: Any, context: Any) -> pb.RemoveContainerResponse:
        with self.lock:
            self.containers.pop(request.container_id, None)
        return pb.RemoveContainerResponse()

    def ListContainers(self, request: Any, context: Any) -> pb.ListContainersResponse:
        with self.lock:
            return pb.ListContainersResponse(containers=[pb.Container(id=c) for c in self.containers])

    def ListContainerStats(self, request: Any, context: Any) -> pb.ListContainerStatsResponse:
        with self.lock:
            stats = [pb.ContainerStats(attributes=pb.ContainerAttributes(id=c)) for c in self.containers]
        return pb.ListContainerStatsResponse(stats=stats)

    def ExecSync(self, request: Any, context: Any) -> pb.ExecSyncResponse:
        return pb.ExecSyncResponse(stdout=self.exec_output, exit_code=0)


class FakeImages(api_pb2_grpc.ImageServiceServicer):
    def PullImage(self, request: Any, context: Any) -> pb.PullImageResponse:
        return pb.PullImageResponse(image_ref=request.image.image)

    def RemoveImage(self, request: Any, context: Any) -> pb.RemoveImageResponse:
        return pb.RemoveImageResponse()


class RefusingRuntime(FakeRuntime):
    def StartContainer(self, request: Any, context: Any) -> pb.StartContainerResponse:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no containers today")
        raise AssertionError("abort returns by raising")


class BareRuntime(api_pb2_grpc.RuntimeServiceServicer):
    """A runtime like pycrio before pods: Version and Status only."""

    Version = FakeRuntime.Version
    Status = FakeRuntime.Status


def serve(tmp_path: Path, runtime: Any, images: Any) -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=16))
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(images, server)
    socket = tmp_path / "fake.sock"
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    try:
        yield f"unix://{socket}"
    finally:
        server.stop(grace=None)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, FakeRuntime]]:
    runtime = FakeRuntime()
    for endpoint in serve(tmp_path, runtime, FakeImages()):
        yield endpoint, runtime


def plan(tmp_path: Path) -> RunPlan:
    pulls = [PullTarget(f"127.0.0.1:1/pcbench/random:{n}", 8 * 1024) for n in range(TINY.pull_images)]
    return RunPlan("t3st", TINY, tmp_path, "127.0.0.1:1/pcbench/busybox:1", pulls)


def quiet(message: str) -> None:
    pass


def test_every_row_is_ok_against_a_runtime_that_serves_everything(
    tmp_path: Path, fake: tuple[str, FakeRuntime]
) -> None:
    endpoint, runtime = fake
    report = bench_runtime(ExternalRuntime("fake", endpoint, os.getpid()), plan(tmp_path), quiet)
    assert not report.error
    assert report.version == "fake 1"
    statuses = {row.key: row.status for row in report.rows}
    # Helper processes are unknown for an external endpoint.
    skipped = {"rss.fleet_helpers", "rss.fleet_infra", "density.rss", "density.pss"}
    assert {key for key, status in statuses.items() if status != "ok"} == skipped
    rows = {row.key: row for row in report.rows}
    assert rows["pod_lifecycle.c8"].latency is not None and rows["pod_lifecycle.c8"].latency.count == 3
    assert rows["pod_lifecycle.c1.run"].latency is not None
    assert rows["container_lifecycle.c1.remove"].latency is not None
    assert rows["exec_sync"].latency is not None and rows["exec_sync"].latency.count == 3
    assert rows["pull_cold"].latency is not None and rows["pull_cold"].latency.count == 2
    assert rows["fleet.list_containers"].detail == "6 items"
    listed = rows["fleet.list_pods"]
    assert listed.latency is not None and listed.latency.count == TINY.list_iterations
    assert listed.extra["us daemon CPU/call"] > 0  # the fake serves from this process
    assert rows["rss.idle"].value is not None and rows["rss.idle"].value > 0
    assert rows["cpu.daemon"].value is not None
    density = rows["density.create"].latency
    assert density is not None and density.count == 3 and density.wall is not None
    assert rows["cpu.idle_0"].value is not None and rows["cpu.idle_n"].value is not None
    assert rows["cpu.idle_n"].label == "daemon CPU 0.05 s idle, 3 pods"
    assert runtime.pods == {} and runtime.containers == {}  # everything made was removed


def test_a_runtime_with_only_version_and_status_reports_unsupported_rows(tmp_path: Path) -> None:
    for endpoint in serve(tmp_path, BareRuntime(), api_pb2_grpc.ImageServiceServicer()):
        report = bench_runtime(ExternalRuntime("bare", endpoint, None), plan(tmp_path), quiet)
    assert not report.error
    by_status: dict[str, set[str]] = {}
    for row in report.rows:
        by_status.setdefault(row.status, set()).add(row.key)
        assert row.status == "ok" or row.detail
    assert set(by_status) == {"unsupported", "skipped"}
    assert by_status["skipped"] == {"rss.idle", "cpu.idle_0", "cpu.daemon"}  # no --pid
    rows = {row.key: row for row in report.rows}
    assert "UNIMPLEMENTED" in rows["pod_lifecycle.c1"].detail
    assert "busybox" in rows["exec_sync"].detail  # container rows say why they could not run


def test_errors_are_failed_rows_and_their_pods_are_removed(tmp_path: Path) -> None:
    runtime = RefusingRuntime()
    for endpoint in serve(tmp_path, runtime, FakeImages()):
        report = bench_runtime(ExternalRuntime("broken", endpoint, None), plan(tmp_path), quiet)
    rows = {row.key: row for row in report.rows}
    assert rows["pod_lifecycle.c1"].status == "ok"
    assert rows["container_lifecycle.c1"].status == "failed"
    assert "INVALID_ARGUMENT: no containers today" in rows["container_lifecycle.c1"].detail
    assert rows["exec_sync"].status == "failed"
    assert rows["fleet.list_pods"].status == "failed"
    assert runtime.pods == {}


def test_a_wrong_exec_output_fails_the_exec_row(tmp_path: Path) -> None:
    runtime = FakeRuntime(exec_output=b"bye\n")
    for endpoint in serve(tmp_path, runtime, FakeImages()):
        report = bench_runtime(ExternalRuntime("liar", endpoint, None), plan(tmp_path), quiet)
    rows = {row.key: row for row in report.rows}
    assert rows["exec_sync"].status == "failed"
    assert "b'bye\\n'" in rows["exec_sync"].detail
    assert rows["container_lifecycle.c1"].status == "ok"
    assert runtime.pods == {}


def test_only_runs_the_named_workloads(tmp_path: Path, fake: tuple[str, FakeRuntime]) -> None:
    endpoint, _ = fake
    chosen = RunPlan(**{**plan(tmp_path).__dict__, "only": frozenset({"exec_sync", "pull_cold"})})
    report = bench_runtime(ExternalRuntime("fake", endpoint, os.getpid()), chosen, quiet)
    assert [row.key for row in report.rows] == ["rss.idle", "exec_sync", "pull_cold", "cpu.daemon"]


def test_density_measures_idle_at_start_up_and_with_its_pods_then_removes_them(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    chosen = RunPlan(**{**plan(tmp_path).__dict__, "only": frozenset({"density"})})
    for endpoint in serve(tmp_path, runtime, FakeImages()):
        report = bench_runtime(ExternalRuntime("fake", endpoint, os.getpid()), chosen, quiet)
    keys = [row.key for row in report.rows]
    assert keys == [
        "rss.idle",
        "cpu.idle_0",
        "density.create",
        "cpu.idle_n",
        "density.rss",
        "density.pss",
        "cpu.daemon",
    ]
    rows = {row.key: row for row in report.rows}
    assert all(rows[key].status == "ok" for key in ("cpu.idle_0", "density.create", "cpu.idle_n"))
    assert rows["density.rss"].status == "skipped"  # an external endpoint's helpers are unknown
    assert runtime.pods == {} and runtime.containers == {}


def test_rounds_against_an_endpoint_bench_it_once_per_round(
    tmp_path: Path, fake: tuple[str, FakeRuntime]
) -> None:
    endpoint, runtime = fake
    args = cli.parse_args(
        ["--endpoint", endpoint, "--name", "fake", "--rounds", "2", "--pid", str(os.getpid())]
    )
    profile = cli.choose_profile(args)  # --quick's sizes, with --rounds 2
    only = frozenset({"pod_lifecycle"})
    chosen = RunPlan(**{**plan(tmp_path).__dict__, "profile": profile, "only": only})
    rounds: list[Round] = []
    no_registry = cast(
        LocalRegistry, None
    )  # an endpoint pulls from wherever it was told; nothing started here
    cli.bench_rounds(args, chosen, no_registry, "", tmp_path / "run", rounds)
    assert [item.order for item in rounds] == [["fake"], ["fake"]]
    for item in rounds:
        report = item.runtime("fake")
        assert report is not None and not report.error
        assert {row.status for row in report.rows} == {"ok"}
        assert report.steps and report.seconds > 0
    assert not (tmp_path / "round-1").exists()  # each round's dirs go when it ends
    assert runtime.pods == {}


def test_round_order_alternates_and_options_are_bounded() -> None:
    assert [cli.round_order(["a", "b"], number) for number in (1, 2, 3)] == [
        ["a", "b"],
        ["b", "a"],
        ["a", "b"],
    ]
    assert cli.choose_profile(cli.parse_args([])).rounds == 3
    quick = cli.choose_profile(cli.parse_args(["--quick"]))
    assert (quick.rounds, quick.density_pods, quick.idle_seconds) == (1, 5, 10.0)
    tuned = cli.choose_profile(cli.parse_args(["--quick", "--rounds", "4", "--density-pods", "7"]))
    assert (tuned.rounds, tuned.density_pods) == (4, 7)
    many = cli.choose_profile(cli.parse_args(["--list-calls", "1000"]))
    assert (many.list_iterations, many.stats_iterations) == (1000, 50)  # stats stay short
    for bad in (
        ["--rounds", "0"],
        ["--rounds", "21"],
        ["--density-pods", "501"],
        ["--idle-seconds", "-1"],
        ["--list-calls", "0"],
        ["--list-calls", "100001"],
    ):
        with pytest.raises(SystemExit):
            cli.parse_args(bad)
