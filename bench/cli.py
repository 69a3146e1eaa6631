"""`python -m bench`: build the images, start the registry, bench each runtime, print and save the report.

By default it starts pycrio and containerd itself, on private dirs, with one CNI config and one registry,
and prints pycrio/containerd ratios. `--endpoint` benches any CRI socket instead (that runtime must be
able to pull from the bench registry over plain HTTP: see `--registry-port`).
"""

import argparse
import json
import os
import platform
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import cleanup, cni, images, report
from bench.containerd import ContainerdDaemon, ContainerdLayout, containerd_config
from bench.profiles import QUICK, SHORT, Profile
from bench.pycrio_daemon import PYCRIO_SRC, PycrioDaemon
from bench.registry import LocalRegistry
from bench.results import RuntimeReport
from bench.runtimes import WORKLOADS, ExternalRuntime, RunPlan, bench_runtime
from bench.workloads import PullTarget

DEFAULT_CACHE = Path("/var/tmp/pycrio-bench-cache")
SOCKET_PARENT = "/run"
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
RUNTIMES = ("pycrio", "containerd")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a run of under a minute (smaller workloads)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this path")
    parser.add_argument(
        "--endpoint", help="bench this CRI socket (unix:///path) instead of starting runtimes"
    )
    parser.add_argument("--name", default="endpoint", help="the report's name for --endpoint")
    parser.add_argument("--pid", type=int, help="the --endpoint daemon's pid, for its RSS and CPU rows")
    parser.add_argument(
        "--runtimes",
        default=",".join(RUNTIMES),
        help=f"which runtimes to start (default {','.join(RUNTIMES)})",
    )
    parser.add_argument(
        "--registry-port", type=int, default=0, help="port of the bench registry (default: free)"
    )
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where built images are kept")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the run's temp dir")
    parser.add_argument(
        "--pycrio-src", type=Path, default=PYCRIO_SRC, help="the pycrio source tree to run (default: ./src)"
    )
    parser.add_argument(
        "--pycrio-python", default=sys.executable, help="the interpreter (venv) to run pycrio with"
    )
    parser.add_argument(
        "--only", default="", help=f"run only these workloads (comma-separated: {','.join(WORKLOADS)})"
    )
    args = parser.parse_args(argv)
    for option, given, known in (("--runtimes", args.runtimes, RUNTIMES), ("--only", args.only, WORKLOADS)):
        unknown = set(filter(None, given.split(","))) - set(known)
        if unknown:
            parser.error(f"{option}: unknown {', '.join(sorted(unknown))}")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """The first SIGINT/SIGTERM/SIGHUP stops the measuring; later ones are ignored so cleanup can finish."""
    for sig in INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def build_images(
    profile: Profile, cache: Path
) -> tuple[images.ImageArtifact, images.ImageArtifact, list[images.ImageArtifact]]:
    cache.mkdir(parents=True, exist_ok=True)
    busybox = images.build(images.busybox_spec(), cache)
    pause = images.build(images.pause_spec(), cache)
    pulls = [
        images.build(
            images.random_spec(f"{profile.name}-{index}", profile.pull_layers, profile.pull_layer_bytes),
            cache,
        )
        for index in range(profile.pull_images)
    ]
    return busybox, pause, pulls


def run_meta(run_id: str, profile: Profile, args: argparse.Namespace, dirs: Sequence[Path]) -> dict[str, Any]:
    """What the JSON report says about the run itself, so numbers can be compared knowingly."""
    return {
        "run_id": run_id,
        "profile": profile.name,
        "only": args.only.split(",") if args.only else list(WORKLOADS),
        "dirs": [str(path) for path in dirs],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "lifecycle_iterations": profile.lifecycle_iterations,
            "concurrency": list(profile.concurrency),
            "exec_iterations": profile.exec_iterations,
            "pull_images": profile.pull_images,
            "pull_layers": profile.pull_layers,
            "pull_layer_bytes": profile.pull_layer_bytes,
            "fleet": f"{profile.fleet_pods} pods x {profile.fleet_containers_per_pod} containers",
            "list_iterations": profile.list_iterations,
            "rss": (
                "VmRSS of the daemon alone; pod helpers (shims / conmon) and infra processes "
                "in rows of their own"
            ),
            "cpu": "utime+stime of the daemon process from just after start-up to the end of its run",
        },
    }


def bench_started_runtimes(
    args: argparse.Namespace, plan: RunPlan, registry: LocalRegistry, pause_ref: str, run_dir: Path
) -> list[RuntimeReport]:
    """Start each runtime of `--runtimes` in turn, on the same CNI config and registry, and bench it."""
    conf_dir = plan.workdir / "net.d"
    cni.write_conf_dir(conf_dir, plan.workdir / "cni-ipam")
    reports = []
    for name in args.runtimes.split(","):
        if name == "pycrio":
            pycrio = PycrioDaemon(
                plan.workdir / "pycrio",
                run_dir / "pycrio",
                conf_dir,
                registry.host,
                args.pycrio_src,
                args.pycrio_python,
            )
            reports.append(bench_runtime(pycrio, plan, log))
        else:
            layout = ContainerdLayout(plan.workdir / "containerd", run_dir / "containerd")
            daemon = ContainerdDaemon(layout, containerd_config(layout, pause_ref, registry.host, conf_dir))
            reports.append(bench_runtime(daemon, plan, log, prepull=(pause_ref,)))
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    profile = QUICK if args.quick else SHORT
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix=f"pcbench-{run_id}-", dir=args.tmp_dir))
    # Sockets need a short path (at most 104 bytes for containerd): they live in their own dir in /run.
    run_dir = Path(tempfile.mkdtemp(prefix=f"pcb-{run_id}-", dir=SOCKET_PARENT))
    previous = {sig: signal.signal(sig, _interrupt) for sig in INTERRUPTS}
    started = time.monotonic()
    meta = run_meta(run_id, profile, args, [workdir, run_dir])
    reports: list[RuntimeReport] = []
    registry: LocalRegistry | None = None
    status = 0
    try:
        log(f"run {run_id} ({profile.name}), temp dirs {workdir} {run_dir}; image cache {args.cache_dir}")
        busybox, pause, pulls = build_images(profile, args.cache_dir)
        registry = LocalRegistry(workdir / "registry", port=args.registry_port).start()
        log(f"registry on {registry.host}; pushing")
        busybox_ref, pause_ref = registry.push(busybox), registry.push(pause)
        targets = [PullTarget(registry.push(image), image.compressed_bytes) for image in pulls]
        meta["registry"] = registry.host
        meta["images"] = {"busybox": busybox_ref, "pause": pause_ref, "pull": [t.reference for t in targets]}
        only = frozenset(filter(None, args.only.split(",")))
        plan = RunPlan(run_id, profile, workdir, busybox_ref, targets, only)
        if args.endpoint:
            reports.append(bench_runtime(ExternalRuntime(args.name, args.endpoint, args.pid), plan, log))
        else:
            meta["cni"] = {"bridge": cni.BRIDGE, "subnet": cni.SUBNET}
            reports += bench_started_runtimes(args, plan, registry, pause_ref, run_dir)
        status = 1 if any(item.error for item in reports) else 0
    except KeyboardInterrupt:
        status = 130
        log("interrupted: cleaning up")
    except Exception as error:  # the set-up failed (images, registry): say so, still clean up
        status = 1
        log(f"failed: {type(error).__name__}: {error}")
    finally:
        if registry is not None:
            registry.stop()
        if not args.endpoint:
            cni.delete_bridge()
            cni.remove_cached_results()
        cleanup.remove_tree(workdir)
        cleanup.remove_tree(run_dir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    meta["seconds"] = round(time.monotonic() - started, 1)
    print_report(reports)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(reports, meta), indent=1))
        log(f"wrote {args.json}")
    return status


def print_report(reports: Sequence[RuntimeReport]) -> None:
    for item in reports:
        print(f"\n== {item.runtime} ({item.version or 'version unknown'}) at {item.endpoint}")
        if item.error:
            print(f"   stopped early: {item.error}")
        print(report.runtime_table(item))
    by_name = {item.runtime: item for item in reports}
    if "pycrio" in by_name and "containerd" in by_name:
        print("\n== pycrio / containerd (ratios of costs: at or below 1.00, pycrio is as fast or as small)")
        items = report.ratios(by_name["pycrio"], by_name["containerd"])
        print(report.comparison_table(by_name["pycrio"], by_name["containerd"]))
        print("\n== the issue's targets (measured, not asserted)")
        print(report.targets_table(items))
