"""Exec and Attach sessions over SPDY or WebSocket, as the kubelet serves them to kubectl.

SPDY: the client opens one stream per requested stdio stream plus an error stream (and, for a tty from v3
on, a resize stream), each named by its `streamType` header; the session starts once all of them are
open. WebSocket: fixed channels 0-4. Either way the outcome goes on the error stream: from v4 on a
metav1.Status JSON whose cause `ExitCode` carries a non-zero exit code, before v4 a plain message on failure.
"""

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import structlog

from adapters.streaming import spdy, websocket
from adapters.streaming.transport import ConnectionClosed, HttpRequest, Transport
from domain.streaming import AttachRequest, ExecRequest
from ports.streaming import ByteSink, ByteSource, Cancellation, ContainerStreams, ProcessStreams, TerminalSize

_log = structlog.get_logger("pycrio.streaming.remotecommand")

V1, V2, V3, V4, V5 = (
    "channel.k8s.io",
    "v2.channel.k8s.io",
    "v3.channel.k8s.io",
    "v4.channel.k8s.io",
    "v5.channel.k8s.io",
)
SPDY_PROTOCOLS = [V4, V3, V2, V1]
WEBSOCKET_PROTOCOLS = [V5, V4, "v4.base64.channel.k8s.io", V1, "base64.channel.k8s.io", ""]
# The kubelet's default wait for the client to open its streams.
STREAM_CREATION_TIMEOUT = 30.0
# How long a finished session waits for the client to close its end before dropping the socket.
CLOSE_GRACE = 5.0

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
_STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR, "resize": RESIZE}


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None = None  # None: the command could not be run at all
    error: str = ""


def status_message(protocol: str, outcome: Outcome) -> bytes:
    """What goes on the error stream: JSON status for v4/v5, the failure message (or nothing) before."""
    if outcome.error:
        message = f"error executing command in container: {outcome.error}"
        status: dict[str, object] = {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: {message}",
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }
    elif outcome.exit_code:
        status = {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {outcome.exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(outcome.exit_code)}]},
        }
    else:
        status = {"metadata": {}, "status": "Success"}
    if protocol.startswith(("v4.", "v5.")):
        return json.dumps(status, separators=(",", ":")).encode()
    return b"" if status["status"] == "Success" else str(status["message"]).encode()


def resize_events(source: ByteSource) -> Iterator[TerminalSize]:
    """Terminal sizes from a stream of JSON objects {"Width": w, "Height": h}, as Go's encoder writes them."""
    decoder = json.JSONDecoder()
    pending = ""
    while True:
        chunk = source.read(4096)
        if not chunk:
            return
        pending += chunk.decode(errors="replace")
        while True:
            pending = pending.lstrip()
            if not pending:
                break
            try:
                value, end = decoder.raw_decode(pending)
            except json.JSONDecodeError:
                break  # incomplete: wait for more
            pending = pending[end:]
            if isinstance(value, dict):
                yield TerminalSize(int(value.get("Width", 0)), int(value.get("Height", 0)))


def run_command(
    backend: ContainerStreams, request: ExecRequest | AttachRequest, streams: ProcessStreams
) -> Outcome:
    try:
        if isinstance(request, ExecRequest):
            return Outcome(exit_code=backend.exec(request.container_id, list(request.cmd), streams))
        backend.attach(request.container_id, streams)
        return Outcome(exit_code=0)
    except Exception as err:  # the client gets the message; the daemon keeps serving
        _log.warning("streaming command failed", container_id=request.container_id, error=str(err))
        return Outcome(error=str(err) or type(err).__name__)


class _SpdyStreams:
    """Collects the streams a remote-command client opens, until the expected number are there."""

    def __init__(self, expected: int) -> None:
        self._cond = threading.Condition()
        self._expected = expected
        self.by_type: dict[int, spdy.SpdyStream] = {}

    def accept_stream(self, stream: spdy.SpdyStream) -> bool:
        kind = _STREAM_TYPES.get(stream.header("streamType"))
        return kind is not None and kind not in self.by_type

    def stream_opened(self, stream: spdy.SpdyStream) -> None:
        with self._cond:
            self.by_type[_STREAM_TYPES[stream.header("streamType")]] = stream
            self._cond.notify_all()

    def wait(self, timeout: float, gone: Cancellation) -> bool:
        with self._cond:
            return (
                self._cond.wait_for(lambda: len(self.by_type) >= self._expected or gone.is_set(), timeout)
                and not gone.is_set()
            )


def serve_spdy(
    transport: Transport,
    request: HttpRequest,
    command: ExecRequest | AttachRequest,
    backend: ContainerStreams,
) -> None:
    protocol = negotiate_spdy(transport, request, SPDY_PROTOCOLS)
    if protocol is None:
        return
    resize = command.tty and protocol in (V3, V4)
    expected = 1 + command.stdin + command.stdout + (command.stderr and not command.tty) + resize
    collected = _SpdyStreams(expected)
    conn = spdy.SpdyConnection(transport, collected)
    reader = threading.Thread(target=conn.serve, name="spdy-reader", daemon=True)
    reader.start()
    try:
        if not collected.wait(STREAM_CREATION_TIMEOUT, conn.done):
            _log.info("client did not open its streams", expected=expected, got=len(collected.by_type))
            return
        s = collected.by_type
        resize_source = s.get(RESIZE)
        streams = ProcessStreams(
            stdin=s.get(STDIN),
            stdout=s.get(STDOUT),
            stderr=None if command.tty else s.get(STDERR),
            tty=command.tty,
            resize=resize_events(resize_source) if resize_source is not None else None,
            cancelled=conn.done,
        )
        outcome = run_command(backend, command, streams)
        for stream in s.values():
            stream.end_input()  # input nobody will read any more is dropped, not left to block the reader
        for kind in (STDOUT, STDERR):
            if kind in s:
                s[kind].close()
        error = s.get(ERROR)
        if error is not None:
            message = status_message(protocol, outcome)
            if message:
                with contextlib.suppress(ConnectionClosed):
                    error.write(message)
            error.close()
    finally:
        conn.close(CLOSE_GRACE)
        reader.join()


def negotiate_spdy(transport: Transport, request: HttpRequest, supported: list[str]) -> str | None:
    """The SPDY/3.1 upgrade with X-Stream-Protocol-Version negotiation (the client's order wins)."""
    offered = request.header_values("X-Stream-Protocol-Version")
    if not offered:
        transport.respond(
            400, "Bad Request", [], b"unable to upgrade: header X-Stream-Protocol-Version does not exist"
        )
        return None
    chosen = next((p for p in offered if p in supported), None)
    if chosen is None:
        body = (
            "unable to upgrade: unable to negotiate protocol: "
            f"client supports {offered}, server accepts {supported}"
        )
        transport.respond(
            403, "Forbidden", [("X-Accepted-Stream-Protocol-Versions", p) for p in supported], body.encode()
        )
        return None
    transport.respond(
        101,
        "Switching Protocols",
        [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", chosen)],
    )
    return chosen


def serve_websocket(
    transport: Transport,
    request: HttpRequest,
    command: ExecRequest | AttachRequest,
    backend: ContainerStreams,
) -> None:
    # wsproto is loaded on the first WebSocket stream, not at start-up.
    from adapters.streaming import websocket_channels

    protocol = websocket.handshake(transport, request, WEBSOCKET_PROTOCOLS)
    if protocol is None:
        return
    # Only channels someone reads take input; messages for any other channel are dropped.
    readable = ({RESIZE} if command.tty else set()) | ({STDIN} if command.stdin else set())
    conn = websocket_channels.ChannelConnection(transport, protocol, readable)
    reader = threading.Thread(target=conn.serve, name="websocket-reader", daemon=True)
    reader.start()

    def sink(channel: int, wanted: bool) -> ByteSink | None:
        return websocket_channels.ChannelSink(conn, channel) if wanted else None

    try:
        # An empty message on the lowest writable channel tells the client the streams are ready.
        first = STDOUT if command.stdout else STDERR if command.stderr and not command.tty else ERROR
        conn.write(first, b"")
        streams = ProcessStreams(
            stdin=conn.inputs[STDIN] if command.stdin else None,
            stdout=sink(STDOUT, command.stdout),
            stderr=sink(STDERR, command.stderr and not command.tty),
            tty=command.tty,
            resize=resize_events(conn.inputs[RESIZE]) if command.tty else None,
            cancelled=conn.done,
        )
        outcome = run_command(backend, command, streams)
        conn.end_inputs()  # input nobody will read any more is dropped, not left to block the reader
        message = status_message(protocol, outcome)
        if message:
            conn.write(ERROR, message)
    except ConnectionClosed as err:
        _log.debug("websocket session ended early", reason=str(err))
    finally:
        conn.close(CLOSE_GRACE)
        reader.join()
