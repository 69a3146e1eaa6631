"""The interceptor over a real gRPC channel: codes, messages, streams, unimplemented RPCs."""

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from app.config import LogConfig
from app.logging import configure_logging, set_level
from domain import errors
from tests.cri_client import CriClient, connect
from tests.unit.test_logging import _lines, stderr  # noqa: F401


class _Raising:
    """Handlers that fail the way real ones can."""

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        failures: dict[str, Exception] = {
            "notfound": errors.NotFound("pod sandbox x not found"),
            "invalid": errors.InvalidArgument("metadata.name is empty"),
            "crash": KeyError("oops"),
        }
        if request.version in failures:
            raise failures[request.version]
        if request.version.startswith("huge"):
            raise errors.NotFound(f"pod sandbox {request.version} not found")
        return pb.VersionResponse(runtime_name="ok")

    def ContainerStatus(
        self, request: pb.ContainerStatusRequest, context: grpc.ServicerContext
    ) -> pb.ContainerStatusResponse:
        raise errors.NotFound(f"container {request.container_id} not found")

    def GetContainerEvents(
        self, request: pb.GetEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ContainerEventResponse]:
        yield pb.ContainerEventResponse(container_id="first")
        raise errors.FailedPrecondition("stream broke")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[CriClient]:
    server = CriServer(tmp_path / "cri.sock", 0o660, runtime_service([_Raising()]), image_service([]), 4)
    server.start()
    cri = connect(tmp_path / "cri.sock")
    yield cri
    cri.close()
    server.stop(1)


@pytest.mark.parametrize(
    ("trigger", "code", "message"),
    [
        ("notfound", grpc.StatusCode.NOT_FOUND, "pod sandbox x not found"),
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "metadata.name is empty"),
        ("crash", grpc.StatusCode.INTERNAL, "internal error: KeyError: 'oops'"),
    ],
)
def test_errors_become_status_codes(
    client: CriClient, trigger: str, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.runtime.Version(pb.VersionRequest(version=trigger))
    assert failure.value.code() == code
    assert failure.value.details() == message


def test_a_nul_anywhere_in_a_request_is_invalid_naming_the_field(client: CriClient) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.runtime.Version(pb.VersionRequest(version="v1\0rm -rf"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details() == "version: must not contain a NUL byte"


@pytest.mark.parametrize(
    ("method", "data", "message"),
    [
        ("/runtime.v1.RuntimeService/Version", b"\x0a\x02\xff\xfe", "version: not valid UTF-8 (byte 0)"),
        (
            "/runtime.v1.RuntimeService/Version",
            b"\x0a\x09v1",
            "version: its length runs past the end of the message",
        ),
        ("/runtime.v1.RuntimeService/GetContainerEvents", b"\x7f", "field 15: wire type 7 does not exist"),
    ],
)
def test_a_request_that_does_not_parse_is_invalid_naming_the_field_not_internal(
    client: CriClient, method: str, data: bytes, message: str
) -> None:
    """grpcio itself would answer INTERNAL "Exception deserializing request!" (unary and streams alike)."""
    call = client.channel.unary_unary(method) if "Version" in method else client.channel.unary_stream(method)
    with pytest.raises(grpc.RpcError) as failure:
        answer = call(data, timeout=10)
        if not isinstance(answer, bytes):
            next(answer)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details() == message
    assert client.runtime.Version(pb.VersionRequest()).runtime_name == "ok"


def test_a_message_quoting_a_10_mb_request_is_cut_not_refused_by_the_client(client: CriClient) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.runtime.Version(pb.VersionRequest(version="huge" + "é" * (5 << 20)))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    details = failure.value.details()
    assert details.startswith("pod sandbox hugeééé") and details.endswith(" more bytes)")
    assert len(details.encode()) < 2100


def test_success_passes_through(client: CriClient) -> None:
    assert client.runtime.Version(pb.VersionRequest()).runtime_name == "ok"


def test_stream_error_after_items(client: CriClient) -> None:
    stream = client.runtime.GetContainerEvents(pb.GetEventsRequest())
    assert next(stream).container_id == "first"
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_unserved_rpcs_are_unimplemented(client: CriClient) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        client.runtime.RunPodSandbox(pb.RunPodSandboxRequest())
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as failure:
        client.image.ListImages(pb.ListImagesRequest())
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_two_groups_cannot_serve_one_rpc() -> None:
    with pytest.raises(ValueError, match="Version"):
        runtime_service([_Raising(), _Raising()])


def test_a_quiet_call_logs_only_at_debug_each_with_its_own_request_id(
    client: CriClient,
    stderr: io.StringIO,  # noqa: F811
) -> None:
    configure_logging(LogConfig(level="info", format="json"), stderr)
    client.runtime.Version(pb.VersionRequest())
    assert [line for line in _lines(stderr) if line["event"] == "rpc"] == []
    set_level("debug")
    client.runtime.Version(pb.VersionRequest())
    client.runtime.Version(pb.VersionRequest())
    rpcs = [line for line in _lines(stderr) if line["event"] == "rpc"]
    assert [(line["method"], line["code"], line["level"]) for line in rpcs] == [
        ("Version", "OK", "debug")
    ] * 2
    assert rpcs[0]["request_id"] and rpcs[0]["request_id"] != rpcs[1]["request_id"]


def test_a_quiet_call_that_fails_is_logged_at_info_with_its_ids(
    client: CriClient,
    stderr: io.StringIO,  # noqa: F811
) -> None:
    configure_logging(LogConfig(level="info", format="json"), stderr)
    with pytest.raises(grpc.RpcError):
        client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="c1"))
    lines = [line for line in _lines(stderr) if line["event"] in ("rpc", "rpc failed")]
    assert [(line["event"], line["code"], line["container_id"]) for line in lines] == [
        ("rpc failed", "NOT_FOUND", "c1"),
        ("rpc", "NOT_FOUND", "c1"),
    ]
    assert lines[0]["request_id"] == lines[1]["request_id"] != ""
