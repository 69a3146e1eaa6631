"""What goes on the error stream, per protocol version, and how resize messages are read."""

import json

from adapters.streaming.buffers import InputBuffer
from adapters.streaming.remotecommand import Outcome, resize_events, status_message
from ports.streaming import TerminalSize


def test_v4_success_and_exit_code_statuses_are_what_client_go_decodes() -> None:
    assert json.loads(status_message("v4.channel.k8s.io", Outcome(exit_code=0))) == {
        "metadata": {},
        "status": "Success",
    }
    failure = json.loads(status_message("v5.channel.k8s.io", Outcome(exit_code=42)))
    assert failure["status"] == "Failure"
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "42"}]


def test_v4_internal_error_carries_the_message() -> None:
    status = json.loads(status_message("v4.channel.k8s.io", Outcome(error="no such container")))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert "no such container" in status["message"]


def test_before_v4_only_failures_are_written_as_text() -> None:
    assert status_message("v3.channel.k8s.io", Outcome(exit_code=0)) == b""
    assert b"non-zero exit code" in status_message("channel.k8s.io", Outcome(exit_code=1))


def test_resize_messages_split_and_joined_across_frames() -> None:
    source = InputBuffer()
    for chunk in (b'{"Width":80,"Hei', b'ght":24}\n{"Width":1', b'00,"Height":50}{"Width":1,"Height":2}'):
        source.feed(chunk)
    source.end()
    assert list(resize_events(source)) == [TerminalSize(80, 24), TerminalSize(100, 50), TerminalSize(1, 2)]
