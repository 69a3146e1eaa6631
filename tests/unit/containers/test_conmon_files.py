"""conmon's CRI log format and the ExecSync output cap, on files written here."""

from pathlib import Path

from adapters.conmon.log_format import parse_line, split_streams
from adapters.conmon.monitor import _read_exec_log
from adapters.cri.generated import api_pb2 as pb
from ports.container_monitor import GRPC_MESSAGE_LIMIT, MAX_EXEC_OUTPUT

STAMP = "2026-11-29T20:40:42.445864433+00:00"


def test_parse_full_and_partial_lines() -> None:
    entry = parse_line(f"{STAMP} stderr P half a line".encode())
    assert entry is not None
    assert (entry.stream, entry.partial, entry.content) == ("stderr", True, b"half a line")
    assert parse_line(b"garbage") is None
    assert parse_line(f"{STAMP} stdout F".encode()) is not None  # an empty line


def test_split_streams_joins_partials_and_restores_newlines() -> None:
    data = f"{STAMP} stdout P hel\n{STAMP} stdout F lo\n{STAMP} stderr F oops\n{STAMP} stdout F \n".encode()
    assert split_streams(data) == (b"hello\n\n", b"oops\n")


def test_split_streams_keeps_every_byte_but_the_entry_ends() -> None:
    data = f"{STAMP} stdout F a\rb\n{STAMP} stdout F c\x0bd\x1ce\n{STAMP} stderr P \r\n".encode()
    assert split_streams(data) == (b"a\rb\nc\x0bd\x1ce\n", b"\r")


def test_the_cut_output_fits_one_grpc_message() -> None:
    reply = pb.ExecSyncResponse(stdout=b"o" * (MAX_EXEC_OUTPUT - 1), stderr=b"e", exit_code=-(2**31))
    assert reply.ByteSize() <= GRPC_MESSAGE_LIMIT


def test_exec_output_past_the_cap_is_cut_and_flagged(tmp_path: Path) -> None:
    log = tmp_path / "exec.log"
    chunk = b"a" * 8000
    with log.open("wb") as handle:
        for _ in range(MAX_EXEC_OUTPUT // len(chunk) + 10):
            handle.write(f"{STAMP} stdout P ".encode() + chunk + b"\n")
    stdout, stderr, truncated = _read_exec_log(log)
    assert truncated and len(stdout) == MAX_EXEC_OUTPUT and stderr == b""


def test_small_exec_output_is_whole(tmp_path: Path) -> None:
    log = tmp_path / "exec.log"
    log.write_bytes(f"{STAMP} stdout F hi\n".encode())
    assert _read_exec_log(log) == (b"hi\n", b"", False)
    assert _read_exec_log(tmp_path / "absent") == (b"", b"", False)
