"""PortForward over SPDY and WebSocket into a real network namespace (root: ip netns)."""

import struct
import threading
from collections.abc import Iterator

import pytest

from adapters.streaming.netns_port_forwarder import connect_in_netns
from domain.errors import NotFound, Unavailable
from domain.streaming import PortForwardRequest
from tests.streaming.conftest import Streaming
from tests.streaming.netns import PodNetns
from tests.streaming_client import SpdyPortForward, WebSocketClient

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pod(streaming: Streaming) -> Iterator[PodNetns]:
    netns = PodNetns().start()
    streaming.targets.sandboxes["pod-1"] = netns.path
    try:
        _wait_listening(netns)
        yield netns
    finally:
        del streaming.targets.sandboxes["pod-1"]
        netns.stop()


def _wait_listening(netns: PodNetns) -> None:
    """busybox httpd may need a moment to listen: wait by connecting from inside, not by sleeping."""
    for _ in range(200):
        try:
            connect_in_netns(netns.path, netns.http_port, 1.0).close()
            return
        except Unavailable:
            threading.Event().wait(0.05)


def test_spdy_forward_reaches_a_server_only_inside_the_namespace(streaming: Streaming, pod: PodNetns) -> None:
    with pytest.raises(Unavailable, match="refused"):
        connect_in_netns("", pod.echo_port, 5.0).close()  # nothing listens there on the host
    forward = SpdyPortForward(streaming.url(PortForwardRequest("pod-1")))
    data, error = forward.connect(pod.echo_port)
    data.write(b"hello pod")
    data.read_until(lambda got: got == b"HELLO POD")
    data.close()  # half-close: the echo server sees EOF, closes, and the data stream ends
    assert data.read_all() == b"HELLO POD"
    assert error.read_all() == b""
    forward.close()


@pytest.mark.parametrize("tunnel", [False, True], ids=["spdy", "spdy-in-websocket"])
def test_spdy_several_ports_and_concurrent_connections(
    streaming: Streaming, pod: PodNetns, tunnel: bool
) -> None:
    forward = SpdyPortForward(streaming.url(PortForwardRequest("pod-1")), tunnel=tunnel)
    assert forward.client.protocol == ("SPDY/3.1+portforward.k8s.io" if tunnel else "portforward.k8s.io")
    echoes = [forward.connect(pod.echo_port) for _ in range(5)]
    pages = [forward.connect(pod.http_port) for _ in range(3)]
    for i, (data, _) in enumerate(echoes):
        data.write(f"connection {i}".encode())
    for data, _ in pages:
        data.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    for i, (data, error) in enumerate(echoes):
        data.read_until(lambda got, i=i: got == f"CONNECTION {i}".encode())
        data.close()
        assert data.read_all() == f"CONNECTION {i}".encode()
        assert error.read_all() == b""
    for data, error in pages:
        response = data.read_all()  # HTTP/1.0: the server closes after the response
        assert response.startswith(b"HTTP/1.") and response.endswith(pod.page)
        assert error.read_all() == b""
    forward.close()


def test_spdy_refused_port_reports_on_the_error_stream(streaming: Streaming, pod: PodNetns) -> None:
    forward = SpdyPortForward(streaming.url(PortForwardRequest("pod-1")))
    data, error = forward.connect(pod.closed_port)
    message = error.read_all()
    assert f"error forwarding port {pod.closed_port}".encode() in message
    assert b"refused" in message.lower()
    assert data.read_all() == b""
    # The SPDY connection stays usable for the next forwarded connection.
    data, error = forward.connect(pod.echo_port)
    data.write(b"still here")
    data.read_until(lambda got: got == b"STILL HERE")
    forward.close()


def test_spdy_stream_without_port_header_is_refused(streaming: Streaming, pod: PodNetns) -> None:
    forward = SpdyPortForward(streaming.url(PortForwardRequest("pod-1")))
    stream = forward.client.open_stream({"streamType": "data", "requestID": "9"}, wait_reply=False)
    stream.read_all()
    assert stream.reset
    forward.close()


def test_websocket_forward_with_two_ports(streaming: Streaming, pod: PodNetns) -> None:
    url = streaming.url(PortForwardRequest("pod-1", (pod.echo_port, pod.http_port)))
    client = WebSocketClient(url, ["v4.channel.k8s.io"])
    for channel, port in ((0, pod.echo_port), (1, pod.echo_port), (2, pod.http_port), (3, pod.http_port)):
        client.read_until(channel, lambda got: len(got) >= 2)
        assert client.channel(channel)[:2] == struct.pack("<H", port)
    client.write(0, b"over websocket")
    client.write(2, b"GET /index.html HTTP/1.0\r\n\r\n")
    client.read_until(0, lambda got: got[2:] == b"OVER WEBSOCKET")
    page = client.read_until(2, lambda got: got.endswith(pod.page))
    assert page[2:].startswith(b"HTTP/1.")
    client.close()


def test_unknown_sandbox_is_not_found(streaming: Streaming) -> None:
    with pytest.raises(NotFound):
        streaming.url(PortForwardRequest("no-such-pod"))
