"""The measured workloads. Each takes a BenchContext and returns report rows; none asserts a speed.

A workload that hits an RPC the runtime does not implement yields "unsupported" rows for everything it
would have measured; any other error yields "failed" rows with the error. Pods a workload makes are
tracked, so they are removed whatever happens.
"""

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from adapters.cri.generated import api_pb2
from bench import procstat
from bench.cri import CriConnection, Requests, describe, is_unimplemented
from bench.floor import Floor
from bench.profiles import Profile
from bench.results import FLOOR_PREFIX, Row, RowStatus
from bench.stats import summarize
from bench.timing import Recorder, run_batch

MIB = 1024 * 1024
RPC_TIMEOUT = 120.0
CLEANUP_TIMEOUT = 60.0
GIVE_UP_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
INFRA_NAMES = ("catatonit", "pause")


@dataclass(frozen=True)
class PullTarget:
    reference: str
    compressed_bytes: int


@dataclass
class BenchContext:
    cri: CriConnection
    requests: Requests
    profile: Profile
    busybox: str
    pulls: Sequence[PullTarget]
    daemon_pid: int | None = None
    helper_processes: Callable[[], list[procstat.ProcessInfo]] | None = None
    # Why containers cannot run (busybox could not be pulled), if they cannot.
    containers_blocked: tuple[RowStatus, str] | None = None
    # pycrio's floor server (bench/floor.py), answering list methods with the given bytes; None for others.
    floor: Callable[[Mapping[str, bytes]], AbstractContextManager[Floor]] | None = None
    pods: "PodTracker" = field(init=False)
    _names: "itertools.count[int]" = field(default_factory=itertools.count)
    _names_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.pods = PodTracker(self.cri)

    def name(self, kind: str) -> str:
        with self._names_lock:
            return f"pcbench-{kind}-{next(self._names)}"


class PodTracker:
    """Every pod a workload started, so cleanup can stop and remove it even after a failure."""

    def __init__(self, cri: CriConnection) -> None:
        self._cri = cri
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def add(self, pod_id: str) -> None:
        with self._lock:
            self._ids.add(pod_id)

    def discard(self, pod_id: str) -> None:
        with self._lock:
            self._ids.discard(pod_id)

    def remove_all(self, concurrency: int = 8) -> list[str]:
        """Stop and remove every tracked pod; returns the errors.

        A runtime that is gone or wedged (UNAVAILABLE, DEADLINE_EXCEEDED) is not asked again for the
        remaining pods: the sweep after the daemon stops kills what is left, and cleanup stays bounded.
        """
        with self._lock:
            ids = sorted(self._ids)
        errors: list[str] = []
        unreachable = threading.Event()

        def remove(index: int) -> None:
            if unreachable.is_set():
                return
            try:
                remove_pod(self._cri, ids[index], timeout=CLEANUP_TIMEOUT)
                self.discard(ids[index])
            except Exception as error:
                errors.append(f"{ids[index][:12]}: {describe(error)}")
                if isinstance(error, grpc.RpcError) and error.code() in GIVE_UP_CODES:
                    unreachable.set()

        if ids:
            run_batch(remove, len(ids), concurrency)
        return errors


# --- CRI steps -------------------------------------------------------------------------------------------


def run_pod(ctx: BenchContext, name: str) -> tuple[str, api_pb2.PodSandboxConfig]:
    config = ctx.requests.pod_config(name)
    reply = ctx.cri.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config), timeout=RPC_TIMEOUT)
    ctx.pods.add(reply.pod_sandbox_id)
    return reply.pod_sandbox_id, config


def remove_pod(cri: CriConnection, pod_id: str, timeout: float = RPC_TIMEOUT) -> None:
    cri.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=timeout)
    cri.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=timeout)


def create_container(ctx: BenchContext, pod_id: str, pod_config: api_pb2.PodSandboxConfig, name: str) -> str:
    config = ctx.requests.container_config(name, ctx.busybox, ["sleep", "3600"])
    request = api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
    container_id: str = ctx.cri.runtime.CreateContainer(request, timeout=RPC_TIMEOUT).container_id
    return container_id


def start_container(ctx: BenchContext, container_id: str) -> None:
    ctx.cri.runtime.StartContainer(
        api_pb2.StartContainerRequest(container_id=container_id), timeout=RPC_TIMEOUT
    )


def stop_container(ctx: BenchContext, container_id: str) -> None:
    # timeout 0: SIGKILL at once. `sleep` as PID 1 ignores SIGTERM, so a grace period would only measure it.
    request = api_pb2.StopContainerRequest(container_id=container_id, timeout=0)
    ctx.cri.runtime.StopContainer(request, timeout=RPC_TIMEOUT)


def remove_container(ctx: BenchContext, container_id: str) -> None:
    request = api_pb2.RemoveContainerRequest(container_id=container_id)
    ctx.cri.runtime.RemoveContainer(request, timeout=RPC_TIMEOUT)


# --- row helpers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str


def latency_rows(
    recorder: Recorder, wall: float, total: RowSpec, steps: Sequence[tuple[str, RowSpec]]
) -> list[Row]:
    rows = [Row(total.key, total.label, latency=summarize(recorder.samples(total.key), wall))]
    for step_name, spec in steps:
        rows.append(Row(spec.key, spec.label, latency=summarize(recorder.samples(step_name))))
    return rows


def guarded(specs: Sequence[RowSpec], ctx: BenchContext, body: Callable[[], list[Row]]) -> list[Row]:
    """Run a workload; on error report each of its rows as unsupported or failed, and remove its pods."""
    try:
        return body()
    except Exception as error:
        status: RowStatus = "unsupported" if is_unimplemented(error) else "failed"
        return [Row(spec.key, spec.label, status=status, detail=describe(error)) for spec in specs]
    finally:
        ctx.pods.remove_all()


def with_containers(specs: Sequence[RowSpec], ctx: BenchContext, body: Callable[[], list[Row]]) -> list[Row]:
    """A workload that runs containers: `guarded`, unless busybox could not be pulled (then rows say why)."""
    if ctx.containers_blocked is None:
        return guarded(specs, ctx, body)
    status, detail = ctx.containers_blocked
    return [Row(spec.key, spec.label, status=status, detail=detail) for spec in specs]


# --- workloads -------------------------------------------------------------------------------------------


def pod_lifecycle(ctx: BenchContext, concurrency: int) -> list[Row]:
    """RunPodSandbox -> StopPodSandbox -> RemovePodSandbox, one cycle per pod."""
    total = RowSpec(f"pod_lifecycle.c{concurrency}", f"pod run+stop+remove c={concurrency}")
    steps = [
        ("run", RowSpec(f"pod_lifecycle.c{concurrency}.run", f"  RunPodSandbox c={concurrency}")),
        ("stop", RowSpec(f"pod_lifecycle.c{concurrency}.stop", f"  StopPodSandbox c={concurrency}")),
        ("remove", RowSpec(f"pod_lifecycle.c{concurrency}.remove", f"  RemovePodSandbox c={concurrency}")),
    ]

    def body() -> list[Row]:
        recorder = Recorder()

        def cycle(record: bool) -> None:
            target = recorder if record else Recorder()
            with target.step(total.key):
                with target.step("run"):
                    pod_id, _ = run_pod(ctx, ctx.name("pod"))
                with target.step("stop"):
                    ctx.cri.runtime.StopPodSandbox(
                        api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=RPC_TIMEOUT
                    )
                with target.step("remove"):
                    ctx.cri.runtime.RemovePodSandbox(
                        api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=RPC_TIMEOUT
                    )
            ctx.pods.discard(pod_id)

        run_batch(lambda _: cycle(False), ctx.profile.warmup, 1)
        wall = run_batch(lambda _: cycle(True), ctx.profile.lifecycle_iterations, concurrency)
        return latency_rows(recorder, wall, total, steps)

    return guarded([total, *(spec for _, spec in steps)], ctx, body)


def container_lifecycle(ctx: BenchContext, concurrency: int) -> list[Row]:
    """CreateContainer -> StartContainer -> StopContainer -> RemoveContainer (busybox sleep) in ready pods."""
    total = RowSpec(
        f"container_lifecycle.c{concurrency}", f"container create+start+stop+remove c={concurrency}"
    )
    steps = [
        (name, RowSpec(f"container_lifecycle.c{concurrency}.{name}", f"  {rpc} c={concurrency}"))
        for name, rpc in (
            ("create", "CreateContainer"),
            ("start", "StartContainer"),
            ("stop", "StopContainer"),
            ("remove", "RemoveContainer"),
        )
    ]
    specs = [total, *(spec for _, spec in steps)]

    def body() -> list[Row]:
        pods = [run_pod(ctx, ctx.name("cpod")) for _ in range(concurrency)]
        recorder = Recorder()

        def cycle(index: int, record: bool) -> None:
            target = recorder if record else Recorder()
            pod_id, pod_config = pods[index % len(pods)]
            with target.step(total.key):
                with target.step("create"):
                    container_id = create_container(ctx, pod_id, pod_config, ctx.name("c"))
                with target.step("start"):
                    start_container(ctx, container_id)
                with target.step("stop"):
                    stop_container(ctx, container_id)
                with target.step("remove"):
                    remove_container(ctx, container_id)

        run_batch(lambda index: cycle(index, False), ctx.profile.warmup, 1)
        wall = run_batch(lambda index: cycle(index, True), ctx.profile.lifecycle_iterations, concurrency)
        return latency_rows(recorder, wall, total, steps)

    return with_containers(specs, ctx, body)


def pod_and_container_to_running(ctx: BenchContext, concurrency: int) -> list[Row]:
    """From nothing to a running container: RunPodSandbox + CreateContainer + StartContainer."""
    total = RowSpec(f"pod_container_start.c{concurrency}", f"pod+container to running c={concurrency}")
    specs = [total]

    def body() -> list[Row]:
        recorder = Recorder()

        def cycle(record: bool) -> None:
            target = recorder if record else Recorder()
            with target.step(total.key):
                pod_id, pod_config = run_pod(ctx, ctx.name("spod"))
                container_id = create_container(ctx, pod_id, pod_config, "main")
                start_container(ctx, container_id)

        run_batch(lambda _: cycle(False), ctx.profile.warmup, 1)
        ctx.pods.remove_all()
        wall = run_batch(lambda _: cycle(True), ctx.profile.lifecycle_iterations, concurrency)
        return latency_rows(recorder, wall, total, [])

    return with_containers(specs, ctx, body)


def exec_sync(ctx: BenchContext) -> list[Row]:
    """ExecSync `echo hello` in a running busybox container; the output is checked, the time reported."""
    total = RowSpec("exec_sync", "ExecSync echo c=1")

    def body() -> list[Row]:
        pod_id, pod_config = run_pod(ctx, ctx.name("epod"))
        container_id = create_container(ctx, pod_id, pod_config, "exec")
        start_container(ctx, container_id)
        recorder = Recorder()
        request = api_pb2.ExecSyncRequest(container_id=container_id, cmd=["echo", "hello"], timeout=10)

        def once(record: bool) -> None:
            target = recorder if record else Recorder()
            with target.step(total.key):
                reply = ctx.cri.runtime.ExecSync(request, timeout=RPC_TIMEOUT)
            if reply.exit_code != 0 or reply.stdout != b"hello\n":
                raise RuntimeError(f"echo answered exit {reply.exit_code}, stdout {reply.stdout!r}")

        run_batch(lambda _: once(False), ctx.profile.warmup, 1)
        wall = run_batch(lambda _: once(True), ctx.profile.exec_iterations, 1)
        return latency_rows(recorder, wall, total, [])

    return with_containers([total], ctx, body)


def cold_pull(ctx: BenchContext) -> list[Row]:
    """PullImage of images the runtime has never seen; each is removed again (untimed) after its pull."""
    size = ctx.pulls[0].compressed_bytes / MIB if ctx.pulls else 0
    total = RowSpec("pull_cold", f"PullImage cold {ctx.profile.pull_layers} layers {size:.0f} MiB")

    def body() -> list[Row]:
        recorder = Recorder()
        moved = 0
        for target in ctx.pulls:
            spec = api_pb2.ImageSpec(image=target.reference)
            with recorder.step(total.key):
                ctx.cri.image.PullImage(api_pb2.PullImageRequest(image=spec), timeout=600)
            moved += target.compressed_bytes
            ctx.cri.image.RemoveImage(api_pb2.RemoveImageRequest(image=spec), timeout=RPC_TIMEOUT)
        samples = recorder.samples(total.key)
        wall = sum(samples)
        row = Row(total.key, total.label, latency=summarize(samples, wall))
        row.extra["MiB/s"] = moved / MIB / wall
        return [row]

    return guarded([total], ctx, body)


def fleet(ctx: BenchContext) -> list[Row]:
    """List and stats calls, and memory, with P pods of 3 running containers each (made at concurrency 8)."""
    pods, per_pod = ctx.profile.fleet_pods, ctx.profile.fleet_containers_per_pod
    shape = f"{pods}x{per_pod}"
    specs = {
        "populate": RowSpec("fleet.populate", f"start {pods} pods x {per_pod} containers c=8 (total s)"),
        "pods": RowSpec("fleet.list_pods", f"ListPodSandbox ({shape})"),
        "containers": RowSpec("fleet.list_containers", f"ListContainers ({shape})"),
        "stats": RowSpec("fleet.list_stats", f"ListContainerStats ({shape})"),
        "rss": RowSpec("rss.fleet", f"daemon RSS with {pods} pods"),
        "helpers": RowSpec("rss.fleet_helpers", f"pod helpers RSS sum with {pods} pods"),
        "infra": RowSpec("rss.fleet_infra", f"pod infra (catatonit) RSS sum with {pods} pods"),
        "teardown": RowSpec("fleet.teardown", f"stop+remove {pods} pods c=8 (total s)"),
    }

    def body() -> list[Row]:
        rows: list[Row] = []

        def populate(index: int) -> None:
            pod_id, pod_config = run_pod(ctx, f"pcbench-fleet-{index}")
            for number in range(per_pod):
                start_container(ctx, create_container(ctx, pod_id, pod_config, f"c{number}"))

        populated = run_batch(populate, pods, 8)
        rows.append(Row(specs["populate"].key, specs["populate"].label, value=populated, unit="s"))

        expected = {"pods": pods, "containers": pods * per_pod, "stats": pods * per_pod}
        stats_calls = ctx.profile.stats_iterations or ctx.profile.list_iterations
        for name, call in list_calls(ctx.cri).items():
            count = stats_calls if name == "stats" else ctx.profile.list_iterations
            rows.append(measure_list(specs[name], call, expected[name], count, ctx.daemon_pid))
        if ctx.floor is not None:
            rows += floor_list_rows(ctx, specs, expected)

        rows += memory_rows(ctx, specs["rss"], specs["helpers"], specs["infra"])

        started = time.perf_counter()
        errors = ctx.pods.remove_all(concurrency=8)
        torn = time.perf_counter() - started
        teardown = specs["teardown"]
        if errors:
            rows.append(Row(teardown.key, teardown.label, status="failed", detail="; ".join(errors[:3])))
        else:
            rows.append(Row(teardown.key, teardown.label, value=torn, unit="s"))
        return rows

    return with_containers(list(specs.values()), ctx, body)


def list_calls(cri: CriConnection) -> dict[str, Callable[[], int]]:
    """The fleet's list calls, each returning how many items it listed."""
    return {
        "pods": lambda: len(
            cri.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=RPC_TIMEOUT).items
        ),
        "containers": lambda: len(
            cri.runtime.ListContainers(api_pb2.ListContainersRequest(), timeout=RPC_TIMEOUT).containers
        ),
        "stats": lambda: len(
            cri.runtime.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=RPC_TIMEOUT).stats
        ),
    }


# The list rows the floor server measures, with the CRI method whose bytes it answers with.
FLOOR_LISTS = {"pods": "ListPodSandbox", "containers": "ListContainers"}


def floor_list_rows(
    ctx: BenchContext, specs: Mapping[str, RowSpec], expected: Mapping[str, int]
) -> list[Row]:
    """The list rows again against the floor server, which answers with the bytes pycrio just sent."""
    assert ctx.floor is not None
    floor_specs = {
        name: RowSpec(FLOOR_PREFIX + specs[name].key, f"{specs[name].label}: floor") for name in FLOOR_LISTS
    }
    try:
        answers = {
            method: raw_answer(ctx.cri, method, getattr(api_pb2, f"{method}Request")())
            for method in FLOOR_LISTS.values()
        }
        with ctx.floor(answers) as floor:
            calls = list_calls(floor.cri)
            return [
                measure_list(spec, calls[name], expected[name], ctx.profile.list_iterations, floor.pid)
                for name, spec in floor_specs.items()
            ]
    except Exception as error:
        return [
            Row(spec.key, spec.label, status="failed", detail=describe(error))
            for spec in floor_specs.values()
        ]


def raw_answer(cri: CriConnection, method: str, request: Message) -> bytes:
    """A RuntimeService answer as the bytes the runtime sent."""
    call = cri.channel.unary_unary(
        f"/runtime.v1.RuntimeService/{method}", request_serializer=type(request).SerializeToString
    )
    answer: bytes = call(request, timeout=RPC_TIMEOUT)
    return answer


def floor_rss_row(ctx: BenchContext) -> Row:
    """The floor server's VmRSS after Version and Status, as `rss.idle` is the daemon's."""
    assert ctx.floor is not None
    spec = RowSpec(FLOOR_PREFIX + "rss.idle", "daemon RSS idle: floor")
    try:
        with ctx.floor({}) as floor:
            floor.cri.runtime.Version(api_pb2.VersionRequest(), timeout=RPC_TIMEOUT)
            floor.cri.runtime.Status(api_pb2.StatusRequest(), timeout=RPC_TIMEOUT)
            rss = procstat.rss_bytes(floor.pid)
    except Exception as error:
        return Row(spec.key, spec.label, status="failed", detail=describe(error))
    if rss is None:
        return Row(spec.key, spec.label, status="failed", detail="the floor server is gone")
    return Row(spec.key, spec.label, value=rss / MIB, unit="MiB")


def measure_list(spec: RowSpec, call: Callable[[], int], expected: int, calls: int, pid: int | None) -> Row:
    """Time one list RPC `calls` times; it must return at least the fleet (a runtime listing fewer is wrong,
    not fast). Also the daemon's CPU per call, which a loaded machine moves much less than latency."""
    try:
        count = call()
        if count < expected:
            return Row(spec.key, spec.label, status="failed", detail=f"listed {count}, expected {expected}")
        recorder = Recorder()

        def once(_: int) -> None:
            with recorder.step(spec.key):
                call()

        before = procstat.thread_runtimes_ns(pid) if pid is not None else {}
        wall = run_batch(once, calls, 1)
        row = Row(
            spec.key, spec.label, latency=summarize(recorder.samples(spec.key), wall), detail=f"{count} items"
        )
        if before and pid is not None:
            used = procstat.runtime_delta_ns(before, procstat.thread_runtimes_ns(pid))
            row.extra["us daemon CPU/call"] = used / calls / 1000
        return row
    except grpc.RpcError as error:
        status: RowStatus = "unsupported" if is_unimplemented(error) else "failed"
        return Row(spec.key, spec.label, status=status, detail=describe(error))


def daemon_rss_row(ctx: BenchContext, spec: RowSpec) -> Row:
    if ctx.daemon_pid is None:
        return Row(spec.key, spec.label, status="skipped", detail="daemon pid unknown (use --pid)")
    rss = procstat.rss_bytes(ctx.daemon_pid)
    if rss is None:
        return Row(spec.key, spec.label, status="failed", detail="daemon is gone")
    return Row(spec.key, spec.label, value=rss / MIB, unit="MiB")


def pod_processes(ctx: BenchContext) -> tuple[list[procstat.ProcessInfo], list[int]] | None:
    """The runtime's per-pod helpers (shims / conmon) and the pods' infra pids; None for an external endpoint.

    Infra processes are children of a helper or, for a runtime that starts them itself, of the daemon.
    """
    if ctx.helper_processes is None:
        return None
    monitors = ctx.helper_processes()
    parents = {info.pid for info in monitors} | ({ctx.daemon_pid} if ctx.daemon_pid else set())
    infra_pids = [
        info.pid for info in procstat.processes() if info.ppid in parents and info.name in INFRA_NAMES
    ]
    return monitors, infra_pids


def memory_rows(ctx: BenchContext, daemon: RowSpec, helpers: RowSpec, infra: RowSpec) -> list[Row]:
    """The daemon alone, then its per-pod helper processes (shims / conmon) and the pods' infra processes."""
    rows = [daemon_rss_row(ctx, daemon)]
    found = pod_processes(ctx)
    if found is None:
        detail = "helper processes unknown for an external endpoint"
        return [*rows, *(Row(s.key, s.label, status="skipped", detail=detail) for s in (helpers, infra))]
    monitors, infra_pids = found
    names = ",".join(sorted({info.name for info in monitors})) or "none"
    rows.append(
        Row(
            helpers.key,
            helpers.label,
            value=procstat.total_rss([info.pid for info in monitors]) / MIB,
            unit="MiB",
            extra={"processes": len(monitors)},
            detail=names,
        )
    )
    rows.append(
        Row(
            infra.key,
            infra.label,
            value=procstat.total_rss(infra_pids) / MIB,
            unit="MiB",
            extra={"processes": len(infra_pids)},
        )
    )
    return rows


def idle_cpu_row(ctx: BenchContext, spec: RowSpec, seconds: float) -> Row:
    """utime+stime the daemon spends over `seconds` of no CRI calls: its timers, pollers and reapers."""
    if ctx.daemon_pid is None:
        return Row(spec.key, spec.label, status="skipped", detail="daemon pid unknown (use --pid)")
    before, threads_before = procstat.cpu_seconds(ctx.daemon_pid), procstat.thread_runtimes_ns(ctx.daemon_pid)
    time.sleep(seconds)
    after, threads_after = procstat.cpu_seconds(ctx.daemon_pid), procstat.thread_runtimes_ns(ctx.daemon_pid)
    if before is None or after is None:
        return Row(spec.key, spec.label, status="failed", detail="daemon is gone")
    # A cross-check finer than the 10 ms ticks of utime+stime (threads that exited in the window are lost).
    exact_ms = procstat.runtime_delta_ns(threads_before, threads_after) / 1e6
    return Row(
        spec.key,
        spec.label,
        value=after - before,
        unit="s",
        extra={"ms by schedstat": round(exact_ms, 1)},
        detail=f"user+system over {seconds:g} s",
    )


def idle_spec(ctx: BenchContext, pods: int) -> RowSpec:
    key = "cpu.idle_0" if pods == 0 else "cpu.idle_n"
    return RowSpec(key, f"daemon CPU {ctx.profile.idle_seconds:g} s idle, {pods} pods")


def density(ctx: BenchContext) -> list[Row]:
    """N pods of one busybox container each, made one after the other; then idle CPU and memory with them up.

    The memory rows total the daemon, its per-pod helpers and the infra processes, as RSS (shared pages
    counted once per process) and as PSS (shared pages split between the processes sharing them).
    """
    pods = ctx.profile.density_pods
    specs = {
        "create": RowSpec("density.create", f"{pods} pods x 1 container, one after another"),
        "cpu": idle_spec(ctx, pods),
        "rss": RowSpec("density.rss", f"RSS daemon+helpers+infra with {pods} pods"),
        "pss": RowSpec("density.pss", f"PSS daemon+helpers+infra with {pods} pods"),
    }

    def body() -> list[Row]:
        recorder = Recorder()
        create = specs["create"]

        def make(index: int, record: bool) -> None:
            target = recorder if record else Recorder()
            with target.step(create.key):
                pod_id, pod_config = run_pod(ctx, ctx.name("dpod"))
                start_container(ctx, create_container(ctx, pod_id, pod_config, "main"))

        run_batch(lambda index: make(index, False), ctx.profile.warmup, 1)
        ctx.pods.remove_all()
        wall = run_batch(lambda index: make(index, True), pods, 1)
        made = Row(create.key, create.label, latency=summarize(recorder.samples(create.key), wall))
        made.extra["s in all"] = round(wall, 2)
        rows = [made, idle_cpu_row(ctx, specs["cpu"], ctx.profile.idle_seconds)]
        return rows + total_memory_rows(ctx, specs["rss"], specs["pss"])

    return with_containers(list(specs.values()), ctx, body)


def total_memory_rows(ctx: BenchContext, rss: RowSpec, pss: RowSpec) -> list[Row]:
    found = pod_processes(ctx)
    if found is None or ctx.daemon_pid is None:
        detail = "daemon pid or helper processes unknown for an external endpoint"
        return [Row(spec.key, spec.label, status="skipped", detail=detail) for spec in (rss, pss)]
    monitors, infra_pids = found
    groups = {"daemon": [ctx.daemon_pid], "helpers": [info.pid for info in monitors], "infra": infra_pids}
    every = [pid for pids in groups.values() for pid in pids]
    rows = []
    for spec, measure in ((rss, procstat.total_rss), (pss, procstat.total_pss)):
        parts = " + ".join(f"{name} {measure(pids) / MIB:.1f}" for name, pids in groups.items())
        rows.append(
            Row(
                spec.key,
                spec.label,
                value=measure(every) / MIB,
                unit="MiB",
                extra={"processes": len(every)},
                detail=f"{parts} MiB",
            )
        )
    return rows
