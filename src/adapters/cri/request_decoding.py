"""Requests protobuf cannot parse are answered INVALID_ARGUMENT naming the field, not grpc's INTERNAL.

grpcio answers a request its deserializer cannot parse with INTERNAL "Exception deserializing request!",
before any handler runs. The kubelet and hostile clients can both send such bytes: a kubelet of Kubernetes
1.36 sends environment values as bytes that need not be UTF-8 (pycrio's proto has them as bytes too, so
those parse), and older or other clients may put non-UTF-8 into a string field, cut a message short or
invent wire types. The deserializer here never fails: it hands the handler an Undecodable naming where the
bytes went wrong (adapters/cri/wire_faults.py), and the interceptor refuses it with INVALID_ARGUMENT.
"""

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor

from adapters.cri.wire_faults import first_fault


class Undecodable:
    """A request that did not parse, with the reason to give the client."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The method's request deserializer, returning an Undecodable instead of raising."""
    if deserialize is None:
        return None
    message_class = getattr(deserialize, "__self__", None)  # FromString is bound to the message class
    descriptor: Descriptor | None = getattr(message_class, "DESCRIPTOR", None)
    type_name = descriptor.name if descriptor is not None else "request"

    def run(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # protobuf's DecodeError, or anything a parser may raise on hostile bytes
            fault = first_fault(descriptor, data) if descriptor is not None else ""
            return Undecodable(fault or f"request: not a valid {type_name} message")

    return run
