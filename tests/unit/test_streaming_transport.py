"""The streaming server's request reader: the head by hand, the bytes after it kept for the protocol."""

import socket

import pytest

from adapters.streaming.transport import ConnectionClosed, Transport


def test_the_head_is_parsed_and_the_bytes_after_it_are_kept() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(
            b"POST /exec/tok?x=1 HTTP/1.1\r\nConnection: Upgrade\r\n"
            b"X-Stream-Protocol-Version: v4.channel.k8s.io, v3.channel.k8s.io\r\n"
            b"X-Stream-Protocol-Version: channel.k8s.io\r\n\r\n\x80\x03\x00\x01"
        )
        transport = Transport(ours, idle_timeout=60)
        request = transport.read_request()
        assert (request.method, request.path, request.query) == ("POST", "/exec/tok", {"x": ["1"]})
        assert request.header("connection") == "Upgrade"
        assert request.header_values("x-stream-protocol-version") == [
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
            "channel.k8s.io",
        ]
        assert transport.recv_exact(4) == b"\x80\x03\x00\x01"  # the first SPDY bytes are not lost


def test_a_client_that_sends_no_head_is_dropped() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = Transport(ours, idle_timeout=3600)
        with pytest.raises(ConnectionClosed, match="request head"):
            transport.read_request(timeout=0.3)


def test_a_malformed_request_line_is_a_value_error() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HELLO\r\n\r\n")
        with pytest.raises(ValueError, match="bad request line"):
            Transport(ours, idle_timeout=60).read_request()
