"""conmon's CRI log format, on lines written here, and the ExecSync output cap against gRPC's limit."""

from adapters.conmon.log_format import parse_line
from adapters.cri.generated import api_pb2 as pb
from ports.oci_runtime import GRPC_MESSAGE_LIMIT, MAX_EXEC_OUTPUT

STAMP = "2026-11-29T20:40:42.445864433+00:00"


def test_parse_full_and_partial_lines() -> None:
    entry = parse_line(f"{STAMP} stderr P half a line".encode())
    assert entry is not None
    assert (entry.stream, entry.partial, entry.content) == ("stderr", True, b"half a line")
    assert parse_line(b"garbage") is None
    assert parse_line(f"{STAMP} stdout F".encode()) is not None  # an empty line


def test_the_cut_output_fits_one_grpc_message() -> None:
    reply = pb.ExecSyncResponse(stdout=b"o" * (MAX_EXEC_OUTPUT - 1), stderr=b"e", exit_code=-(2**31))
    assert reply.ByteSize() <= GRPC_MESSAGE_LIMIT
