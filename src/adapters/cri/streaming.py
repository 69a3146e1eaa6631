"""Exec, Attach and PortForward: validate, check the target exists, answer with a single-use URL.

The streaming itself happens later, when the kubelet opens the URL on the streaming server.
"""

import grpc

from adapters.cri.generated import api_pb2 as pb
from domain.streaming import AttachRequest, ExecRequest, PortForwardRequest, StreamingService


class StreamingHandlers:
    def __init__(self, service: StreamingService) -> None:
        self._service = service

    def Exec(self, request: pb.ExecRequest, context: grpc.ServicerContext) -> pb.ExecResponse:
        url = self._service.url_for(
            ExecRequest(
                container_id=request.container_id,
                cmd=tuple(request.cmd),
                tty=request.tty,
                stdin=request.stdin,
                stdout=request.stdout,
                stderr=request.stderr,
            )
        )
        return pb.ExecResponse(url=url)

    def Attach(self, request: pb.AttachRequest, context: grpc.ServicerContext) -> pb.AttachResponse:
        url = self._service.url_for(
            AttachRequest(
                container_id=request.container_id,
                tty=request.tty,
                stdin=request.stdin,
                stdout=request.stdout,
                stderr=request.stderr,
            )
        )
        return pb.AttachResponse(url=url)

    def PortForward(
        self, request: pb.PortForwardRequest, context: grpc.ServicerContext
    ) -> pb.PortForwardResponse:
        url = self._service.url_for(PortForwardRequest(request.pod_sandbox_id, tuple(request.port)))
        return pb.PortForwardResponse(url=url)
