"""SystemdUnits over systemd's D-Bus manager API (org.freedesktop.systemd1), with jeepney.

Every start and stop is a job: the call returns the job's path at once and systemd announces the end with
a JobRemoved signal, so each call listens for that signal before it asks (a quick job may end before the
reply arrives). One connection, opened at the first call, is shared by all threads through jeepney's
thread-safe router; a closed connection is opened again on the next call.

The connection goes, as runc's, cri-o's and the kubelet's do for root, straight to systemd's private socket
when it can be opened, and to the system bus otherwise: so the systemd driver does not depend on the D-Bus
daemon running (or being restarted).
"""

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jeepney import DBusAddress, DBusErrorResponse, MatchRule, Message, new_method_call
from jeepney.auth import BEGIN, AuthenticationError, Authenticator
from jeepney.bus_messages import message_bus
from jeepney.io.common import RouterClosed
from jeepney.io.threading import DBusConnection, DBusRouter, Proxy, ReceiveStopped, open_dbus_connection
from jeepney.wrappers import unwrap_msg

from domain.errors import DeadlineExceeded, FailedPrecondition, Internal, InvalidArgument, NotFound
from ports.systemd_units import PropertyValue

_MANAGER = DBusAddress(
    "/org/freedesktop/systemd1",
    bus_name="org.freedesktop.systemd1",
    interface="org.freedesktop.systemd1.Manager",
)
# No sender: signals carry systemd's unique bus name, which jeepney's own matching would not resolve.
_JOB_REMOVED = MatchRule(
    type="signal",
    interface="org.freedesktop.systemd1.Manager",
    member="JobRemoved",
    path="/org/freedesktop/systemd1",
)
_NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
# systemd's own D-Bus server for root (what systemctl uses): no message bus in between.
PRIVATE_SOCKET = "/run/systemd/private"

# D-Bus signatures of the properties pycrio sets or reads.
_SIGNATURES = {
    "Description": "s",
    "Slice": "s",
    "Delegate": "b",
    "DefaultDependencies": "b",
    "PIDs": "au",
    "MemoryMax": "t",
    "MemorySwapMax": "t",
    "CPUWeight": "t",
    "CPUQuotaPerSecUSec": "t",
    "CPUQuotaPeriodUSec": "t",
    "AllowedCPUs": "ay",
    "AllowedMemoryNodes": "ay",
    "TasksMax": "t",
    "IOWeight": "t",
    "ActiveState": "s",
    "ControlGroup": "s",
}
_MASKS = ("AllowedCPUs", "AllowedMemoryNodes")


class DbusSystemdUnits:
    """`buses` are tried in order at each (re)connection: an absolute path is a socket of systemd itself
    (its private socket), a name ("SYSTEM") a message bus."""

    def __init__(self, buses: Sequence[str] = (PRIVATE_SOCKET, "SYSTEM"), job_timeout: float = 30.0) -> None:
        if not buses:
            raise ValueError("DbusSystemdUnits needs at least one bus to try")
        self._buses = tuple(buses)
        self._job_timeout = job_timeout
        self._lock = threading.Lock()
        self._router: DBusRouter | None = None
        self._job_ends = _JobEnds()

    # ---- the port ---------------------------------------------------------------------------------

    def start_slice(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        _check_unit_name(name, ".slice")
        if self.active(name):
            return
        self._start_transient(name, {"Description": f"pycrio slice {name}", **properties})

    def start_scope(
        self, name: str, slice_name: str, pids: Sequence[int], properties: Mapping[str, PropertyValue]
    ) -> None:
        _check_unit_name(name, ".scope")
        _check_unit_name(slice_name, ".slice")
        if not pids or any(pid <= 0 for pid in pids):
            raise InvalidArgument(f"scope {name} needs the pids it holds, not {list(pids)}")
        if self.active(name):
            self._call("AttachProcessesToUnit", "ssau", (name, "/", list(pids)))
            return
        wanted: dict[str, PropertyValue] = {
            "Description": f"pycrio scope {name}",
            "Slice": slice_name,
            "Delegate": True,
            "PIDs": tuple(pids),
            **properties,
        }
        self._start_transient(name, wanted)

    def set_properties(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        # SetUnitProperties would load a stub for a unit that does not exist and answer success.
        self._call("GetUnit", "s", (name,), missing=NotFound)
        self._call("SetUnitProperties", "sba(sv)", (name, True, _encode(properties)), missing=NotFound)

    def get_property(self, name: str, prop: str) -> PropertyValue:
        path = self._call("GetUnit", "s", (name,), missing=NotFound)[0]
        interface = "org.freedesktop.systemd1." + (
            "Unit"
            if prop in ("ActiveState",)
            else {"slice": "Slice", "scope": "Scope"}[name.rsplit(".", 1)[1]]
        )
        address = DBusAddress(
            path, bus_name="org.freedesktop.systemd1", interface="org.freedesktop.DBus.Properties"
        )
        reply = self._send(new_method_call(address, "Get", "ss", (interface, prop)))
        signature, value = reply[0]
        if prop in _MASKS:
            return _from_mask(bytes(value))
        if signature in ("t", "u", "i", "x", "q", "n", "y", "s", "b"):
            return value  # type: ignore[no-any-return]
        raise Internal(f"{name}: property {prop} has D-Bus type {signature}, which pycrio does not read")

    def active(self, name: str) -> bool:
        try:
            state = self.get_property(name, "ActiveState")
        except NotFound:
            return False
        return state in ("active", "activating", "reloading")

    def stop(self, name: str) -> None:
        try:
            self._run_job(name, "StopUnit", "ss", (name, "replace"))
        except NotFound:
            return
        self._reset_failed(name)

    # ---- jobs ------------------------------------------------------------------------------------

    def _start_transient(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        try:
            self._run_job(
                name, "StartTransientUnit", "ssa(sv)a(sa(sv))", (name, "fail", _encode(properties), [])
            )
        except Internal:
            # A unit of that name that failed earlier stays loaded until reset: reset it, and try once more.
            self._reset_failed(name)
            if name.endswith(".slice") and self.active(name):
                return
            self._run_job(
                name, "StartTransientUnit", "ssa(sv)a(sa(sv))", (name, "fail", _encode(properties), [])
            )

    def _run_job(self, unit: str, method: str, signature: str, body: tuple[Any, ...]) -> None:
        """Call a manager method that queues a job, and wait for the job's end."""
        router = self._connected()
        with self._job_ends.listening() as signals:
            job = self._call(method, signature, body, missing=NotFound)[0]
            deadline = time.monotonic() + self._job_timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(
                        f"systemd did not finish {method} {unit} within {self._job_timeout:g}s"
                    )
                try:
                    signal = signals.get(timeout=min(remaining, 1.0))
                except queue.Empty:
                    if not router._rcv_thread.is_alive():
                        raise Internal(
                            f"systemd {method} {unit}: the connection to systemd closed before the job ended"
                        ) from None
                    continue
                _id, removed_job, _unit, result = signal.body
                if removed_job == job:
                    break
        if result != "done":
            raise Internal(f"systemd {method} {unit}: job {result}")

    def _reset_failed(self, name: str) -> None:
        with contextlib.suppress(NotFound, Internal):  # not loaded, or not failed
            self._call("ResetFailedUnit", "s", (name,), missing=NotFound)

    def _call(
        self, method: str, signature: str, body: tuple[Any, ...], missing: type[Exception] = Internal
    ) -> tuple[Any, ...]:
        try:
            return self._send(new_method_call(_MANAGER, method, signature, body))
        except DBusErrorResponse as err:
            if err.name == _NO_SUCH_UNIT:
                raise missing(f"systemd unit {body[0]} is not loaded") from None
            raise Internal(
                f"systemd {method} {body[0]}: {err.name}: {' '.join(map(str, err.data))}"
            ) from None

    def _send(self, message: Message) -> tuple[Any, ...]:
        router = self._connected()
        try:
            reply = router.send_and_get_reply(message, timeout=self._job_timeout)
        # jeepney's reply matcher answers a call in flight with KeyError when the router closes under it.
        except (ReceiveStopped, RouterClosed, KeyError, OSError, TimeoutError) as err:
            self._drop(router)
            raise Internal(f"systemd D-Bus call {message.header.fields} failed: {err}") from None
        result: tuple[Any, ...] = unwrap_msg(reply)
        return result

    def _connected(self) -> DBusRouter:
        with self._lock:
            if self._router is not None and self._router._rcv_thread.is_alive():
                return self._router
            failures = []
            for bus in self._buses:
                try:
                    router = self._open(bus)
                except (OSError, AuthenticationError, DBusErrorResponse, TimeoutError) as err:
                    failures.append(f"{_bus_label(bus)}: {err}")
                    continue
                self._router = router
                return router
            # A node without systemd (or its D-Bus) cannot serve this driver: the configuration is wrong.
            raise FailedPrecondition(
                "runtime.cgroup_driver = systemd needs systemd's D-Bus API, and it cannot be reached: "
                + "; ".join(failures)
            )

    def _open(self, bus: str) -> DBusRouter:
        if bus.startswith("/"):
            # A direct connection: systemd sends it every signal, and it has no bus to say Hello to.
            router = DBusRouter(DBusConnection(_authenticated_socket(bus, timeout=self._job_timeout)))
        else:
            router = DBusRouter(open_dbus_connection(bus=bus))
        try:
            # The router's only filter, added before any other thread can use it (see _JobEnds).
            router.filter(_JOB_REMOVED, queue=self._job_ends)
            if not bus.startswith("/"):
                Proxy(message_bus, router, timeout=self._job_timeout).AddMatch(_JOB_REMOVED)
            # systemd sends job signals to a bus only while some client there has subscribed.
            unwrap_msg(
                router.send_and_get_reply(new_method_call(_MANAGER, "Subscribe"), timeout=self._job_timeout)
            )
        except BaseException:
            _close(router)
            raise
        return router

    def _drop(self, router: DBusRouter) -> None:
        with self._lock:
            if self._router is router:
                self._router = None
        _close(router)

    def close(self) -> None:
        with self._lock:
            router, self._router = self._router, None
        if router is not None:
            _close(router)


class _JobEnds:
    """Hands each JobRemoved signal to every call waiting for a job's end.

    jeepney's receiver thread walks the router's filters without a lock: a filter added or removed per
    call by another thread can crash it ("dictionary changed size during iteration"), which closes the
    connection under every call in flight. So each connection gets this one filter when it is opened, and
    the calls come and go here, under a lock of our own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[queue.Queue[Message]] = set()

    def put_nowait(self, message: Message) -> None:
        """Called by the router's receiver thread, as if this were its queue."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.put_nowait(message)

    @contextlib.contextmanager
    def listening(self) -> Iterator[queue.Queue[Message]]:
        signals: queue.Queue[Message] = queue.Queue()
        with self._lock:
            self._listeners.add(signals)
        try:
            yield signals
        finally:
            with self._lock:
                self._listeners.discard(signals)


def _close(router: DBusRouter) -> None:
    with contextlib.suppress(OSError):
        router.close()
        router.conn.close()


def _bus_label(bus: str) -> str:
    return bus if bus.startswith("/") else f"the {bus.lower()} bus"


def _authenticated_socket(path: str, timeout: float) -> socket.socket:
    """A unix socket to a D-Bus server (not a bus), past the EXTERNAL authentication (our uid)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        auth = Authenticator()  # EXTERNAL after the credentials byte: the server reads our uid (SO_PEERCRED)
        for request in auth:
            sock.sendall(request)
            reply = sock.recv(1024)
            if not reply:
                raise ConnectionResetError(f"{path} closed the connection while authenticating")
            auth.feed(reply)
        sock.sendall(BEGIN)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def _check_unit_name(name: str, suffix: str) -> None:
    stem = name.removesuffix(suffix)
    if not name.endswith(suffix) or not stem or "/" in name or any(c.isspace() for c in name):
        raise InvalidArgument(f"{name!r} is not a systemd {suffix[1:]} name")


def _encode(properties: Mapping[str, PropertyValue]) -> list[tuple[str, tuple[str, Any]]]:
    encoded: list[tuple[str, tuple[str, Any]]] = []
    for key, value in properties.items():
        signature = _SIGNATURES.get(key)
        if signature is None:
            raise InvalidArgument(f"systemd unit property {key} is not one pycrio sets")
        if key in _MASKS:
            assert isinstance(value, tuple)
            encoded.append((key, (signature, _to_mask(value))))
        elif signature == "au":
            assert isinstance(value, tuple)
            encoded.append((key, (signature, list(value))))
        else:
            encoded.append((key, (signature, value)))
    return encoded


def _to_mask(indexes: tuple[int, ...]) -> bytes:
    """CPU or node indexes as systemd's bitmask: bit i of byte i // 8 for index i."""
    if not indexes:
        return b""
    mask = bytearray(max(indexes) // 8 + 1)
    for index in indexes:
        mask[index // 8] |= 1 << (index % 8)
    return bytes(mask)


def _from_mask(mask: bytes) -> tuple[int, ...]:
    return tuple(i * 8 + bit for i, byte in enumerate(mask) for bit in range(8) if byte & (1 << bit))
