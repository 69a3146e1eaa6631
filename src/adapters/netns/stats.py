"""NetworkStatsReader that enters a pod's netns on a short-lived thread and reads its /net/dev.

setns(2) with CLONE_NEWNET moves only the calling thread, and /proc/thread-self/net shows that thread's
namespace. A fresh thread per read means no thread of the daemon is ever left in a pod's namespace,
and no process is forked (pyroute2's NetNS forks one per namespace).
"""

import ctypes
import errno
import os
import threading

from domain.errors import Internal, NotFound
from ports.net_stats import InterfaceCounters

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsStatsReader:
    def read(self, netns_path: str | None) -> list[InterfaceCounters]:
        if netns_path is None:
            return parse_net_dev(_read_text("/proc/thread-self/net/dev"))
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"network namespace {netns_path} not found") from None
        try:
            result: list[str] = []
            failure: list[BaseException] = []
            reader = threading.Thread(
                target=_read_in_netns, args=(fd, netns_path, result, failure), name="netns-stats"
            )
            reader.start()
            reader.join()
        finally:
            os.close(fd)
        if failure:
            raise failure[0]
        return parse_net_dev(result[0])


def _read_in_netns(fd: int, path: str, result: list[str], failure: list[BaseException]) -> None:
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            if code == errno.EINVAL:
                raise NotFound(f"{path} is not a network namespace")
            raise Internal(f"setns {path}: {os.strerror(code)}")
        result.append(_read_text("/proc/thread-self/net/dev"))
    except BaseException as err:  # handed to the caller's thread
        failure.append(err)


def _read_text(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def parse_net_dev(text: str) -> list[InterfaceCounters]:
    """The kernel's /proc/net/dev table: two header lines, then `name: 8 rx fields 8 tx fields`."""
    interfaces = []
    for line in text.splitlines()[2:]:
        name, sep, fields = line.partition(":")
        values = fields.split()
        if not sep or len(values) < 16:
            continue
        numbers = [int(v) for v in values[:16]]
        interfaces.append(
            InterfaceCounters(
                name=name.strip(),
                rx_bytes=numbers[0],
                rx_packets=numbers[1],
                rx_errors=numbers[2],
                rx_dropped=numbers[3],
                tx_bytes=numbers[8],
                tx_packets=numbers[9],
                tx_errors=numbers[10],
                tx_dropped=numbers[11],
            )
        )
    return interfaces
