"""Exec over SPDY and WebSocket through the real streaming server, against real local processes."""

import contextlib
import threading

import pytest
from wsproto.utilities import LocalProtocolError

from domain.streaming import ExecRequest
from tests.streaming.conftest import Streaming
from tests.streaming_client import SpdyCommand, WebSocketCommand

SPDY_VERSIONS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]


def _exec(cmd: list[str], tty: bool = False, stdin: bool = False, stderr: bool = True) -> ExecRequest:
    return ExecRequest(
        "exec-target", tuple(cmd), tty=tty, stdin=stdin, stdout=True, stderr=stderr and not tty
    )


def test_spdy_exec_without_stdin_returns_output_and_success(streaming: Streaming) -> None:
    url = streaming.url(_exec(["sh", "-c", "echo out; echo err >&2"]))
    result = SpdyCommand(url, stdin=False, stdout=True, stderr=True, tty=False).wait()
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")
    assert result.status == {"metadata": {}, "status": "Success"}
    assert result.exit_code == 0


@pytest.mark.parametrize("code", [1, 3, 127])
def test_spdy_exec_exit_code_comes_back_on_the_error_stream(streaming: Streaming, code: int) -> None:
    url = streaming.url(_exec(["sh", "-c", f"exit {code}"]))
    result = SpdyCommand(url, stdin=False, stdout=True, stderr=True, tty=False).wait()
    assert result.status is not None
    assert result.status["reason"] == "NonZeroExitCode"
    assert result.exit_code == code


def test_spdy_exec_with_stdin_sees_input_then_eof(streaming: Streaming) -> None:
    url = streaming.url(_exec(["sh", "-c", "wc -c; cat"], stdin=True))
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=True, tty=False)
    command.send(b"x" * 100_000)  # more than one SPDY window, in several frames
    command.close_stdin()
    result = command.wait()
    assert result.stdout.strip() == b"100000"
    assert result.exit_code == 0


def test_spdy_exec_large_output_arrives_whole(streaming: Streaming) -> None:
    url = streaming.url(_exec(["sh", "-c", "head -c 3000000 /dev/zero"], stderr=False))
    result = SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False).wait()
    assert result.stdout == b"\0" * 3_000_000


@pytest.mark.parametrize("version", SPDY_VERSIONS)
def test_every_spdy_protocol_version_negotiates_and_reports(streaming: Streaming, version: str) -> None:
    url = streaming.url(_exec(["sh", "-c", "echo hi; exit 2"]))
    result = SpdyCommand(url, stdin=False, stdout=True, stderr=True, tty=False, protocols=[version]).wait()
    assert result.protocol == version
    assert result.stdout == b"hi\n"
    if version == "v4.channel.k8s.io":
        assert result.exit_code == 2
    else:  # before v4 the error stream carries the failure as text
        assert b"non-zero exit code" in result.error_text


def test_spdy_client_preference_wins_the_negotiation(streaming: Streaming) -> None:
    url = streaming.url(_exec(["true"]))
    command = SpdyCommand(url, False, True, True, False, protocols=["v3.channel.k8s.io", "v4.channel.k8s.io"])
    assert command.protocol == "v3.channel.k8s.io"
    command.wait()


def _ask_until(command: SpdyCommand, wanted: bytes) -> None:
    """Send a line until the terminal's answer shows `wanted`: the resize and the input travel on different
    streams, so the first answers may predate the resize."""
    assert command.stdout is not None
    for attempt in range(1, 51):
        command.send(b"go\n")
        out = command.stdout.read_until(lambda o, n=attempt: o.count(b"oops") >= n)
        if wanted in out.rsplit(b"oops", 2)[-2]:
            return
    raise AssertionError(f"{wanted!r} never showed")


def test_spdy_exec_tty_merges_output_and_honours_resize(streaming: Streaming) -> None:
    script = "while read line; do stty size; echo oops >&2; done"
    url = streaming.url(_exec(["sh", "-c", script], tty=True, stdin=True))
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=False, tty=True)
    assert command.stderr is None and command.resize_stream is not None
    command.resize(123, 45)
    _ask_until(command, b"45 123")
    command.resize(80, 24)
    _ask_until(command, b"24 80")
    command.send(b"\x04")  # ^D: end of input on a terminal
    result = command.wait()
    assert b"oops" in result.stdout  # stderr goes to the one terminal stream
    assert result.exit_code == 0


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_websocket_exec_with_stdin_and_exit_code(streaming: Streaming, protocol: str) -> None:
    url = streaming.url(_exec(["sh", "-c", "read line; echo got:$line; echo e >&2; exit 5"], stdin=True))
    command = WebSocketCommand(url, [protocol])
    assert command.protocol == protocol
    command.send(b"hello\n")
    result = command.wait()
    assert result.stdout == b"got:hello\n"
    assert result.stderr == b"e\n"
    assert result.exit_code == 5


def test_websocket_v5_close_signal_ends_stdin(streaming: Streaming) -> None:
    url = streaming.url(_exec(["cat"], stdin=True))
    command = WebSocketCommand(url, ["v5.channel.k8s.io"])
    command.send(b"one\n")
    command.send(b"two\n")
    command.close_stdin()
    result = command.wait()
    assert result.stdout == b"one\ntwo\n"
    assert result.exit_code == 0


def test_websocket_first_message_announces_the_lowest_writable_channel(streaming: Streaming) -> None:
    url = streaming.url(_exec(["true"]))
    command = WebSocketCommand(url)
    command.wait()
    assert command.client.messages[0] == (1, b"")


def test_websocket_exec_tty_resize(streaming: Streaming) -> None:
    url = streaming.url(_exec(["sh", "-c", "while read line; do stty size; done"], tty=True, stdin=True))
    command = WebSocketCommand(url, ["v5.channel.k8s.io"])
    command.resize(100, 30)
    for attempt in range(1, 51):
        command.send(b"go\n")
        out = command.client.read_until(1, lambda b, n=attempt: b.count(b"\n") >= 2 * n)
        if b"30 100" in out:
            break
    command.close_stdin()
    assert b"30 100" in command.client.channel(1)
    assert command.wait().exit_code == 0  # stdin closed: `read` ends, and so does the loop


def test_spdy_pings_are_answered_and_windows_updated(streaming: Streaming) -> None:
    url = streaming.url(_exec(["sh", "-c", "wc -c"], stdin=True, stderr=False))
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=False, tty=False)
    command.client.ping(7)
    command.send(b"y" * 200_000)  # past half the 64 KiB window: the server acknowledges what it read
    command.close_stdin()
    result = command.wait()
    assert result.stdout.strip() == b"200000"
    assert 6 in result.frames_seen  # PING echoed
    assert 9 in result.frames_seen  # WINDOW_UPDATE


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_input_nobody_reads_does_not_wedge_the_session(streaming: Streaming, transport: str) -> None:
    url = streaming.url(_exec(["sh", "-c", "exec 0<&-; sleep 0.2; echo done"], stdin=True, stderr=False))
    chunk = b"z" * 65536
    if transport == "spdy":
        spdy = SpdyCommand(url, stdin=True, stdout=True, stderr=False, tty=False)
        for _ in range(128):  # 8 MiB, more than the server buffers for a stream
            spdy.send(chunk)
        result = spdy.wait()
    else:
        ws = WebSocketCommand(url, ["v4.channel.k8s.io"])

        def send_all() -> None:
            with contextlib.suppress(OSError, LocalProtocolError):  # the server may finish first
                for _ in range(128):
                    ws.send(chunk)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        result = ws.wait()
        sender.join()
    assert result.stdout == b"done\n"
    assert result.exit_code == 0
