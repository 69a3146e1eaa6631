"""Benchmark one runtime end to end: start it, run every workload, take it down and clean up after it."""

import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from adapters.cri.generated import api_pb2
from bench import cleanup, procstat, workloads
from bench.cri import CriConnection, Requests, connect, describe, is_unimplemented
from bench.floor import Floor
from bench.profiles import Profile
from bench.results import Row, RowStatus, RuntimeReport
from bench.workloads import BenchContext, PullTarget, RowSpec


class ManagedRuntime(Protocol):
    """A CRI runtime the bench can start, measure and stop: pycrio, containerd, or an external socket."""

    name: str

    @property
    def endpoint(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    def start(self) -> CriConnection: ...

    def stop(self) -> None: ...


@runtime_checkable
class HasFloor(Protocol):
    """pycrio: a CRI server on its required stack with nothing of it in it (bench/floor.py)."""

    def floor(self, answers: Mapping[str, bytes] | None = None) -> AbstractContextManager[Floor]: ...


@runtime_checkable
class HasHelpers(Protocol):
    """A runtime the bench started itself knows its per-pod helper processes (shims, conmon)."""

    def helper_processes(self) -> list[procstat.ProcessInfo]: ...


class ExternalRuntime:
    """A runtime someone else started (`--endpoint`): the bench only connects; RSS needs `--pid`."""

    def __init__(self, name: str, endpoint: str, pid: int | None) -> None:
        self.name = name
        self._endpoint = endpoint
        self._pid = pid
        self._cri: CriConnection | None = None

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def pid(self) -> int | None:
        return self._pid

    def start(self) -> CriConnection:
        self._cri = connect(self._endpoint)
        return self._cri

    def stop(self) -> None:
        if self._cri is not None:
            self._cri.close()


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    profile: Profile
    workdir: Path
    busybox: str
    pulls: list[PullTarget]
    # Workload names to run (see WORKLOADS); empty runs them all.
    only: frozenset[str] = frozenset()


def wait_ready(cri: CriConnection, timeout: float = 30.0) -> str:
    """Wait for RuntimeReady and NetworkReady; returns a note when they never came (the run goes on)."""
    deadline = time.monotonic() + timeout
    conditions: dict[str, bool] = {}
    while time.monotonic() < deadline:
        reply = cri.runtime.Status(api_pb2.StatusRequest(), timeout=10)
        conditions = {condition.type: condition.status for condition in reply.status.conditions}
        if conditions and all(conditions.values()):
            return ""
        time.sleep(0.2)
    return f"not ready: {conditions}"


def bench_runtime(
    runtime: ManagedRuntime, plan: RunPlan, log: "Logger", prepull: tuple[str, ...] = ()
) -> RuntimeReport:
    """Every workload against one runtime. `prepull` names images pulled untimed first (a sandbox image)."""
    report = RuntimeReport(runtime=runtime.name, endpoint=runtime.endpoint)
    started = time.monotonic()
    cgroup_parent = f"/pcbench-{plan.run_id}-{runtime.name}"
    requests = Requests(plan.run_id, cgroup_parent, plan.workdir / f"logs-{runtime.name}")
    ctx: BenchContext | None = None
    try:
        log(f"{runtime.name}: starting")
        cri = runtime.start()
        version = cri.runtime.Version(api_pb2.VersionRequest(), timeout=10)
        report.version = f"{version.runtime_name} {version.runtime_version}"
        note = wait_ready(cri)
        if note:
            log(f"{runtime.name}: {note}")
        pid = runtime.pid
        cpu_start = procstat.cpu_seconds(pid) if pid is not None else None
        helpers = runtime.helper_processes if isinstance(runtime, HasHelpers) else None
        ctx = BenchContext(
            cri=cri,
            requests=requests,
            profile=plan.profile,
            busybox=plan.busybox,
            pulls=plan.pulls,
            daemon_pid=pid,
            helper_processes=helpers,
            floor=runtime.floor if isinstance(runtime, HasFloor) else None,
        )
        report.rows.append(workloads.daemon_rss_row(ctx, RowSpec("rss.idle", "daemon RSS idle")))
        if ctx.floor is not None:
            report.rows.append(workloads.floor_rss_row(ctx))
        if not plan.only or "density" in plan.only:
            # Before any pull or pod: what the daemon costs doing nothing right after start-up.
            log(f"{runtime.name}: idle for {plan.profile.idle_seconds:g} s")
            idle = workloads.idle_spec(ctx, 0)
            report.rows.append(workloads.idle_cpu_row(ctx, idle, plan.profile.idle_seconds))
            report.steps[idle.label] = plan.profile.idle_seconds
        ctx.containers_blocked = prepare_images(cri, [*prepull, plan.busybox])
        for title, step in plan_steps(ctx, plan.only):
            log(f"{runtime.name}: {title}")
            began = time.monotonic()
            report.rows += step()
            report.steps[title] = round(time.monotonic() - began, 1)
        report.rows.append(cpu_row(pid, cpu_start))
    except Exception as error:
        report.error = describe(error)
        log(f"{runtime.name}: stopped early: {report.error}")
    finally:
        errors = ctx.pods.remove_all() if ctx is not None else []
        if errors:
            log(f"{runtime.name}: removing pods through the CRI failed: {'; '.join(errors[:3])}")
        with contextlib.suppress(Exception):
            runtime.stop()
        sweep(runtime, cgroup_parent)
        report.seconds = round(time.monotonic() - started, 1)
    return report


class Logger(Protocol):
    def __call__(self, message: str) -> None: ...


def prepare_images(cri: CriConnection, references: list[str]) -> tuple[RowStatus, str] | None:
    """Pull what the workloads need, untimed. If that fails, container rows report why instead of running."""
    for reference in references:
        try:
            cri.image.PullImage(
                api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)), timeout=300
            )
        except Exception as error:
            status: RowStatus = "unsupported" if is_unimplemented(error) else "failed"
            return status, f"pulling {reference.rsplit('/', 1)[-1]} untimed: {describe(error)}"
    return None


# Workload names for `--only`, in the order they run.
WORKLOADS = (
    "pod_lifecycle",
    "container_lifecycle",
    "pod_container_start",
    "exec_sync",
    "density",
    "pull_cold",
    "fleet",
)


def plan_steps(
    ctx: BenchContext, only: frozenset[str] = frozenset()
) -> list[tuple[str, Callable[[], list[Row]]]]:
    """The workloads in the order they run (all, or those named in `only`), each with a title for the log."""
    steps: list[tuple[str, str, Callable[[], list[Row]]]] = []
    lifecycles: list[tuple[str, str, Callable[[BenchContext, int], list[Row]]]] = [
        ("pod_lifecycle", "pod lifecycle", workloads.pod_lifecycle),
        ("container_lifecycle", "container lifecycle", workloads.container_lifecycle),
        ("pod_container_start", "pod+container to running", workloads.pod_and_container_to_running),
    ]
    for name, title, workload in lifecycles:
        for concurrency in ctx.profile.concurrency:
            steps.append((name, f"{title} c={concurrency}", functools.partial(workload, ctx, concurrency)))
    steps.append(("exec_sync", "ExecSync", functools.partial(workloads.exec_sync, ctx)))
    density_title = f"density: {ctx.profile.density_pods} pods one after another, then idle"
    steps.append(("density", density_title, functools.partial(workloads.density, ctx)))
    steps.append(("pull_cold", "cold pull", functools.partial(workloads.cold_pull, ctx)))
    fleet_title = f"fleet of {ctx.profile.fleet_pods} pods"
    steps.append(("fleet", fleet_title, functools.partial(workloads.fleet, ctx)))
    return [(title, step) for name, title, step in steps if not only or name in only]


def cpu_row(pid: int | None, started: float | None) -> Row:
    label = "daemon CPU over the run"
    if pid is None or started is None:
        return Row("cpu.daemon", label, status="skipped", detail="daemon pid unknown (use --pid)")
    now = procstat.cpu_seconds(pid)
    if now is None:
        return Row("cpu.daemon", label, status="failed", detail="daemon is gone")
    return Row("cpu.daemon", label, value=now - started, unit="s", detail="user+system, daemon only")


def sweep(runtime: ManagedRuntime, cgroup_parent: str) -> None:
    """After the runtime stopped: kill its leftover helpers and pod processes, remove its cgroups."""
    if isinstance(runtime, HasHelpers):
        leftover = {info.pid for info in runtime.helper_processes()}
        cleanup.kill_processes(lambda info: info.pid in leftover)
    cleanup.kill_cgroup_tree(cgroup_parent)
