"""`python -m bench`: build the images, start the registry, bench the runtimes in rounds, print and save.

By default it starts pycrio and containerd itself, on private dirs, with one CNI config and one registry,
in rounds that alternate which runtime goes first (a fresh daemon and a fresh batch of every row each
time), and prints pycrio/containerd ratios per round with their median and min-max. `--endpoint`
benches any CRI socket instead (that runtime must be able to pull from the bench registry over plain
HTTP: see `--registry-port`).
"""

import argparse
import dataclasses
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
from bench.results import Round, RuntimeReport
from bench.runtimes import WORKLOADS, ExternalRuntime, RunPlan, bench_runtime
from bench.workloads import PullTarget

DEFAULT_CACHE = Path("/var/tmp/pycrio-bench-cache")
SOCKET_PARENT = "/run"
INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
RUNTIMES = ("pycrio", "containerd")
MAX_ROUNDS = 20
MAX_DENSITY_PODS = 500
MAX_IDLE_SECONDS = 600.0
MAX_LIST_CALLS = 100_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a run of a few minutes (smaller workloads, one round)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds of every runtime, alternating which goes first (default 3; 1 with --quick; "
        f"at most {MAX_ROUNDS})",
    )
    parser.add_argument(
        "--density-pods",
        type=int,
        help=f"pods of the density rows (default 50; 5 with --quick; at most {MAX_DENSITY_PODS})",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        help=f"the idle CPU window (default 30; 10 with --quick; at most {MAX_IDLE_SECONDS:g})",
    )
    parser.add_argument(
        "--list-calls",
        type=int,
        help=f"calls per ListPodSandbox and ListContainers row (default 50; 10 with --quick; at most "
        f"{MAX_LIST_CALLS}); ListContainerStats keeps the profile's",
    )
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
    for option, value, low, high in (
        ("--rounds", args.rounds, 1, MAX_ROUNDS),
        ("--density-pods", args.density_pods, 1, MAX_DENSITY_PODS),
        ("--idle-seconds", args.idle_seconds, 0, MAX_IDLE_SECONDS),
        ("--list-calls", args.list_calls, 1, MAX_LIST_CALLS),
    ):
        if value is not None and not low <= value <= high:
            parser.error(f"{option}: {value} is outside {low}..{high:g}")
    return args


def choose_profile(args: argparse.Namespace) -> Profile:
    """The profile of --quick or the default one, with what --rounds, --density-pods, --idle-seconds and
    --list-calls say."""
    profile = QUICK if args.quick else SHORT
    overrides: dict[str, Any] = {
        "rounds": args.rounds,
        "density_pods": args.density_pods,
        "idle_seconds": args.idle_seconds,
    }
    if args.list_calls is not None:
        overrides["list_iterations"] = args.list_calls
        overrides["stats_iterations"] = profile.stats_iterations or profile.list_iterations
    return dataclasses.replace(
        profile, **{key: value for key, value in overrides.items() if value is not None}
    )


def round_order(names: Sequence[str], number: int) -> list[str]:
    """Round 1 runs the runtimes as named, round 2 reversed, and so on: neither always goes first."""
    return list(names) if number % 2 == 1 else list(reversed(names))


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
        "rounds": profile.rounds,
        "settings": {
            "rounds": profile.rounds,
            "density_pods": profile.density_pods,
            "idle_seconds": profile.idle_seconds,
            "lifecycle_iterations": profile.lifecycle_iterations,
            "concurrency": list(profile.concurrency),
            "exec_iterations": profile.exec_iterations,
            "pull_images": profile.pull_images,
            "pull_layers": profile.pull_layers,
            "pull_layer_bytes": profile.pull_layer_bytes,
            "fleet": f"{profile.fleet_pods} pods x {profile.fleet_containers_per_pod} containers",
            "list_iterations": profile.list_iterations,
            "stats_iterations": profile.stats_iterations or profile.list_iterations,
            "rss": (
                "VmRSS of the daemon alone; pod helpers (shims / conmon) and infra processes "
                "in rows of their own"
            ),
            "cpu": "utime+stime of the daemon process from just after start-up to the end of its run",
            "density_memory": "RSS and PSS (smaps_rollup) summed: daemon, pod helpers, infra processes",
            "floor": (
                "floor.* rows (pycrio only): bench/floor_server.py, grpcio's server with pycrio's required "
                "packages and nothing of pycrio, compared with the baseline's row of the same name"
            ),
        },
    }


def bench_rounds(
    args: argparse.Namespace,
    plan: RunPlan,
    registry: LocalRegistry,
    pause_ref: str,
    run_dir: Path,
    rounds: list[Round],
    network: cni.BenchNetwork | None = None,
) -> None:
    """Every round: each runtime started afresh on dirs of its own, in alternating order.

    Each round joins `rounds` as it starts and fills in as runtimes finish, so an interrupt keeps what was
    measured (a round without both runtimes gives no ratios).
    """
    conf_dir = plan.workdir / "net.d"
    if network is not None:
        cni.write_conf_dir(conf_dir, plan.workdir / "cni-ipam", network)
    names = [args.name] if args.endpoint else args.runtimes.split(",")
    for number in range(1, plan.profile.rounds + 1):
        order = round_order(names, number)
        log(f"round {number}/{plan.profile.rounds}: {', then '.join(order)}")
        started = time.monotonic()
        current = Round(number)
        rounds.append(current)
        # A fresh temp dir per round: new daemon state, so pulls are cold again and names do not clash.
        turn = dataclasses.replace(plan, workdir=plan.workdir / f"round-{number}")
        sockets = run_dir / f"r{number}"
        for name in order:
            current.reports.append(bench_one(args, name, turn, registry, pause_ref, sockets, conf_dir))
        current.seconds = round(time.monotonic() - started, 1)
        cleanup.remove_tree(turn.workdir)
        cleanup.remove_tree(sockets)


def bench_one(
    args: argparse.Namespace,
    name: str,
    plan: RunPlan,
    registry: LocalRegistry,
    pause_ref: str,
    run_dir: Path,
    conf_dir: Path,
) -> RuntimeReport:
    """One runtime's turn in a round: started here (or the --endpoint), benched, stopped."""
    if args.endpoint:
        return bench_runtime(ExternalRuntime(args.name, args.endpoint, args.pid), plan, log)
    if name == "pycrio":
        pycrio = PycrioDaemon(
            plan.workdir / "pycrio",
            run_dir / "pycrio",
            conf_dir,
            registry.host,
            args.pycrio_src,
            args.pycrio_python,
        )
        return bench_runtime(pycrio, plan, log)
    layout = ContainerdLayout(plan.workdir / "containerd", run_dir / "containerd")
    daemon = ContainerdDaemon(layout, containerd_config(layout, pause_ref, registry.host, conf_dir))
    return bench_runtime(daemon, plan, log, prepull=(pause_ref,))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    profile = choose_profile(args)
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix=f"pcbench-{run_id}-", dir=args.tmp_dir))
    # Sockets need a short path (at most 104 bytes for containerd): they live in their own dir in /run.
    run_dir = Path(tempfile.mkdtemp(prefix=f"pcb-{run_id}-", dir=SOCKET_PARENT))
    previous = {sig: signal.signal(sig, _interrupt) for sig in INTERRUPTS}
    started = time.monotonic()
    meta = run_meta(run_id, profile, args, [workdir, run_dir])
    rounds: list[Round] = []
    network: cni.BenchNetwork | None = None
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
        if not args.endpoint:
            network = cni.network_for(run_id)
            meta["cni"] = dataclasses.asdict(network)
        bench_rounds(args, plan, registry, pause_ref, run_dir, rounds, network)
        status = 1 if any(report.error for item in rounds for report in item.reports) else 0
    except KeyboardInterrupt:
        status = 130
        log("interrupted: cleaning up")
    except Exception as error:  # the set-up failed (images, registry): say so, still clean up
        status = 1
        log(f"failed: {type(error).__name__}: {error}")
    finally:
        if registry is not None:
            registry.stop()
        if network is not None:
            cni.delete_bridge(network.bridge)
            cni.remove_cached_results(network.name)
        cleanup.remove_tree(workdir)
        cleanup.remove_tree(run_dir)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    meta["seconds"] = round(time.monotonic() - started, 1)
    print_report(rounds, meta["seconds"])
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(rounds, meta), indent=1))
        log(f"wrote {args.json}")
    return status


def print_report(rounds: Sequence[Round], seconds: float) -> None:
    many = len(rounds) > 1
    for item in rounds:
        turns = ", ".join(f"{report.runtime} {report.seconds:.0f} s" for report in item.reports)
        print(f"round {item.number}: {turns} ({item.seconds:.0f} s)")
    print(f"whole run: {seconds:.0f} s")
    medians = report.medians(rounds)
    for merged in medians:
        over = f", median over {len(rounds)} rounds of each column" if many else ""
        print(f"\n== {merged.runtime} ({merged.version or 'version unknown'}) at {merged.endpoint}{over}")
        if merged.error:
            print(f"   stopped early: {merged.error}")
        print(report.runtime_table(merged))
    by_name = {merged.runtime: merged for merged in medians}
    both = report.pairs(rounds)
    subject, baseline = by_name.get(report.SUBJECT), by_name.get(report.BASELINE)
    if both and subject is not None and baseline is not None:
        print(
            f"\n== pycrio / containerd over {len(both)} round(s): ratios of costs (at or below 1.00, pycrio "
            "is as fast or as small);\n   p50 (or value) per round, its median and min-max; p99 and time/op "
            "as medians"
        )
        items = report.over_rounds(both)
        print(report.comparison_table(subject, baseline, items))
        print("\n== the issue's targets: per round the worse of p50/value and time/op; verdict on the median")
        print(report.targets_table(items))
