"""The `pycrio` command, with cri-o's verbs: `serve` (the default), `config`, `check`, `version`, `wipe`."""

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from adapters.host.facts import read_boot_id
from adapters.host.private_dirs import make_private
from adapters.host.run_dir_boot import claim_run_dir
from adapters.host.state_lock import LOCK_NAME, StateDirInUse, StateDirLock
from adapters.host.unix_sockets import SocketInUse
from adapters.process.heap import use_one_arena
from adapters.process.runner import OrphanReaper
from adapters.process.subreaper import become_subreaper
from adapters.systemd.watchdog import start_watchdog
from app.checks import host_problems
from app.config import DEFAULT_CONFIG_FILE, Config, ConfigError, load
from app.config_docs import render_template
from app.container import make_container, package_version
from app.logging import configure_logging
from app.reload import Reloader
from app.tracing import start_tracing

# Flags that are shorthands for one config key.
_FLAG_KEYS = {
    "listen": "grpc.listen",
    "root": "runtime.root",
    "run_dir": "runtime.run_dir",
    "cgroup_driver": "runtime.cgroup_driver",
    "log_level": "log.level",
    "log_format": "log.format",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pycrio", description="A Kubernetes CRI runtime.")
    parser.add_argument("--version", action="version", version=f"pycrio {package_version()}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML config file (default: {DEFAULT_CONFIG_FILE}, if present)",
    )
    parser.add_argument("--config-dir", type=Path, default=None, help="drop-in dir (default: <config>.d)")
    parser.add_argument("--listen", help="CRI endpoint, unix:///path")
    parser.add_argument("--root", help="state dir")
    parser.add_argument("--run-dir", help="runtime files dir")
    parser.add_argument("--cgroup-driver", choices=["cgroupfs", "systemd"])
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["console", "json"])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config key, e.g. --set image.pull_progress_timeout=30 (repeatable)",
    )
    parser.add_argument("--yes", action="store_true", help="wipe: confirm removing all state")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "config", "check", "version", "wipe"],
        default="serve",
        help="serve the CRI (default); print the effective config as an editable template; check what "
        "start-up would refuse; print versions; remove all state after an unclean shutdown (with --yes)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_from_args(args)
    except ConfigError as err:
        print(f"pycrio: bad configuration: {err}", file=sys.stderr)
        return 2
    if args.command == "config":
        sys.stdout.write(render_template(config))
        return 0
    if args.command == "version":
        from app.version_info import version_lines

        print("\n".join(version_lines(config)))
        return 0
    if args.command == "wipe":
        from app.wipe import wipe

        return wipe(config, confirmed=args.yes)
    problems = host_problems(config)
    for problem in problems:
        print(f"pycrio: bad configuration: {problem}", file=sys.stderr)
    if args.command == "check":
        if not problems:
            print("pycrio: configuration and host are usable")
        return 2 if problems else 0
    if problems:
        return 2
    # A handler, not SIG_IGN (which runc, conmon and containers would inherit): a SIGHUP that arrives
    # before serve() takes over must not kill the daemon either.
    signal.signal(signal.SIGHUP, lambda signum, frame: None)
    use_one_arena()  # before the threads start: what a pull frees is reused (adapters/process/heap.py)
    configure_logging(config.log)
    make_private(Path(config.runtime.root), Path(config.runtime.run_dir))
    # Before anything reads the state: restoring and recovering another live daemon's pods would undo them.
    try:
        StateDirLock(Path(config.runtime.root), Path(config.runtime.run_dir)).acquire()  # held till exit
    except StateDirInUse as err:
        print(f"pycrio: {err}", file=sys.stderr)
        return 1
    # Before anything reads the run dir: one on disk may hold an earlier boot's pins and pids.
    claim_run_dir(Path(config.runtime.run_dir), read_boot_id(), keep=(LOCK_NAME,))
    stop_tracing = start_tracing(config.tracing)
    container = make_container(config)
    reloader = Reloader(config, lambda: load_from_args(args), container.images())
    try:
        return serve(container, config.grpc.shutdown_grace, reloader.reload)
    finally:
        stop_tracing()


def load_from_args(args: argparse.Namespace) -> Config:
    """The config the flags describe (SIGHUP reads it again the same way)."""
    overrides = [
        f"{key}={_toml_string(getattr(args, flag))}"
        for flag, key in _FLAG_KEYS.items()
        if getattr(args, flag) is not None
    ]
    config_file = args.config if args.config is not None else DEFAULT_CONFIG_FILE
    return load(config_file, args.config_dir, [*overrides, *args.overrides], explicit=args.config is not None)


def serve(container: object, grace: float, reload: Callable[[], object] = lambda: None) -> int:
    log = structlog.get_logger("pycrio")
    become_subreaper()
    reaper = OrphanReaper()
    reaper.start()
    try:
        # Streaming first: an Exec served the moment the CRI socket appears needs its URL.
        streaming = container.streaming_server()  # type: ignore[attr-defined]
        streaming.start()
    except OSError as err:
        print(f"pycrio: streaming server: {err}", file=sys.stderr)
        return 1
    server = container.server()  # type: ignore[attr-defined]
    try:
        server.start()
    except SocketInUse as err:
        streaming.stop()
        print(f"pycrio: {err}", file=sys.stderr)
        return 1
    background = container.background_services()  # type: ignore[attr-defined]
    try:
        _start_all(background)
    except (SocketInUse, OSError) as err:
        # e.g. another runtime began serving nri.socket_path since host_problems looked
        server.stop(0)
        streaming.stop()
        reaper.stop()
        print(f"pycrio: {err}", file=sys.stderr)
        return 1
    manager = container.service_manager()  # type: ignore[attr-defined]
    manager.ready()
    stopping = threading.Event()
    watchdog = start_watchdog(manager, stopping)

    def shutdown() -> None:
        for service in background:
            try:
                service.stop()
            except Exception:  # the CRI server must stop regardless
                log.exception("stopping a background service failed")
        server.stop(grace)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("stopping", signal=signal.Signals(signum).name)
            manager.stopping()
            threading.Thread(target=shutdown, name="shutdown").start()

    def reload_and_report() -> None:
        manager.reloading()
        try:
            reload()
        finally:
            manager.ready()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        log.info("reloading", signal="SIGHUP")
        threading.Thread(target=reload_and_report, name="reload").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_reload)
    server.wait()
    streaming.stop()
    reaper.stop()
    stopping.set()
    if watchdog is not None:
        watchdog.join()
    return 0


def _start_all(services: list[Any]) -> None:
    """Start each service in order; if one fails, stop those already started and raise its error."""
    started: list[Any] = []
    try:
        for service in services:
            service.start()
            started.append(service)
    except BaseException:
        for service in reversed(started):
            try:
                service.stop()
            except Exception:
                structlog.get_logger("pycrio").exception("stopping a background service failed")
        raise


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    raise SystemExit(main())
