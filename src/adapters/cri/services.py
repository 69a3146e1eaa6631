"""The two CRI services, each assembled from handler groups (one module per group of RPCs).

A group is any object whose methods are named like the RPCs it serves. An RPC no group serves answers
UNIMPLEMENTED through the generated base class.
"""

from collections.abc import Iterable
from typing import Any, cast

from adapters.cri.generated import api_pb2, api_pb2_grpc


def _rpc_names(service: str) -> list[str]:
    return [m.name for m in api_pb2.DESCRIPTOR.services_by_name[service].methods]


def _assemble(base: type, service: str, groups: Iterable[object]) -> Any:
    servicer = base()
    served: dict[str, str] = {}
    for group in groups:
        for name in _rpc_names(service):
            handler = getattr(group, name, None)
            if handler is None:
                continue
            if name in served:
                raise ValueError(
                    f"{service}.{name} is served by both {served[name]} and {type(group).__name__}"
                )
            served[name] = type(group).__name__
            setattr(servicer, name, handler)
    return servicer


def runtime_service(groups: Iterable[object]) -> api_pb2_grpc.RuntimeServiceServicer:
    return cast(
        api_pb2_grpc.RuntimeServiceServicer,
        _assemble(api_pb2_grpc.RuntimeServiceServicer, "RuntimeService", groups),
    )


def image_service(groups: Iterable[object]) -> api_pb2_grpc.ImageServiceServicer:
    return cast(
        api_pb2_grpc.ImageServiceServicer,
        _assemble(api_pb2_grpc.ImageServiceServicer, "ImageService", groups),
    )
