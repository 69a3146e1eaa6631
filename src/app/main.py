"""The `pycrio` command: `pycrio` serves the CRI; `pycrio config` prints the effective config."""

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import structlog
import tomli_w

from adapters.cri.server import SocketInUse
from adapters.host.private_dirs import make_private
from adapters.process.runner import OrphanReaper
from adapters.process.subreaper import become_subreaper
from adapters.systemd.watchdog import start_watchdog
from app.config import DEFAULT_CONFIG_FILE, ConfigError, load, to_toml_dict
from app.container import make_container, package_version
from app.logging import configure_logging

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
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_FILE, help="TOML config file")
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
    parser.add_argument("command", nargs="?", choices=["serve", "config"], default="serve")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = [
        f"{key}={_toml_string(getattr(args, flag))}"
        for flag, key in _FLAG_KEYS.items()
        if getattr(args, flag) is not None
    ]
    try:
        config = load(args.config, args.config_dir, [*overrides, *args.overrides])
    except ConfigError as err:
        print(f"pycrio: bad configuration: {err}", file=sys.stderr)
        return 2
    if args.command == "config":
        sys.stdout.write(tomli_w.dumps(to_toml_dict(config)))
        return 0
    configure_logging(config.log)
    make_private(Path(config.runtime.root), Path(config.runtime.run_dir))
    return serve(make_container(config), config.grpc.shutdown_grace)


def serve(container: object, grace: float) -> int:
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
    for service in background:
        service.start()
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

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.wait()
    streaming.stop()
    reaper.stop()
    stopping.set()
    if watchdog is not None:
        watchdog.join()
    return 0


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    raise SystemExit(main())
