"""WebSocket (RFC 6455) channel connections as Kubernetes streams use them.

Each binary message starts with one byte naming its channel (for exec: 0 stdin, 1 stdout, 2 stderr,
3 error, 4 resize); the base64 variants send text messages whose first character is the channel digit and
the rest base64. v5.channel.k8s.io adds a close signal: a message on channel 255 whose payload is the number
of the channel the client will not write to again (how a v5 client ends stdin).

Framing, masking, fragmentation and control frames are wsproto's: a small, well-kept, pure-Python protocol
state machine without I/O, which fits this threaded server better than an asyncio framework and saves
hand-written parsing of the fiddly parts of RFC 6455. The opening handshake is done here, on the request the
streaming server has already read; the framed connections are in `websocket_channels`, which the stream
handlers import on the first WebSocket stream (wsproto is not needed before).
"""

import base64
import hashlib

from adapters.streaming.transport import HttpRequest, Transport

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_CHANNEL = 255
V5 = "v5.channel.k8s.io"


def is_websocket_request(request: HttpRequest) -> bool:
    upgrade = request.header("Upgrade").lower() == "websocket"
    return upgrade and any(v.lower() == "upgrade" for v in request.header_values("Connection"))


def handshake(transport: Transport, request: HttpRequest, supported: list[str]) -> str | None:
    """Answer the opening handshake; the chosen subprotocol ("" when the client asked for none), or None
    after answering an error."""
    key = request.header("Sec-WebSocket-Key")
    if request.header("Sec-WebSocket-Version") != "13" or not key:
        transport.respond(
            400, "Bad Request", [("Sec-WebSocket-Version", "13")], b"unsupported websocket request"
        )
        return None
    offered = request.header_values("Sec-WebSocket-Protocol") or [""]
    chosen = next((p for p in offered if p in supported), None)
    if chosen is None:
        body = f"requested protocol(s) are not supported: {offered}; supports {supported}".encode()
        transport.respond(403, "Forbidden", [], body)
        return None
    accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)]
    if chosen:
        headers.append(("Sec-WebSocket-Protocol", chosen))
    transport.respond(101, "Switching Protocols", headers)
    return chosen
