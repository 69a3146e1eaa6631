"""ServiceManager over systemd's notification socket (sd_notify(3)): datagrams such as `READY=1` sent to
$NOTIFY_SOCKET. Without that variable (not started by systemd, or not Type=notify) every call does nothing.
"""

import os
import socket
import time

import structlog

_log = structlog.get_logger("pycrio.notify")


class SdNotify:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if environ is None else environ
        if environ is None:
            # Like sd_notify(unset_environment=1): the variables are the daemon's alone. runc, run by conmon
            # with an inherited NOTIFY_SOCKET, would otherwise set up systemd notification for the container.
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
        self._address = env.get("NOTIFY_SOCKET", "")
        if self._address.startswith("@"):  # an abstract socket
            self._address = "\0" + self._address[1:]
        self._watchdog_usec = _watchdog_usec(env)

    def _send(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as err:
            # The daemon keeps serving; systemd will notice a missing READY=1 or watchdog ping by itself.
            _log.warning("sd_notify failed", message=message.splitlines()[0], error=str(err))

    def ready(self) -> None:
        self._send("READY=1\nSTATUS=serving the CRI")

    def reloading(self) -> None:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\nSTATUS=reloading the configuration")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping")

    def watchdog_interval(self) -> float | None:
        if not self._address or not self._watchdog_usec:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")


def _watchdog_usec(env: dict[str, str]) -> int:
    """WATCHDOG_USEC, when it is meant for this process (WATCHDOG_PID absent or ours)."""
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0
    try:
        return max(int(env.get("WATCHDOG_USEC", "0")), 0)
    except ValueError:
        return 0
