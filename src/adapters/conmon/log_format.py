"""The CRI log format conmon writes (`k8s-file`): `<RFC3339Nano> <stdout|stderr> <F|P> <content>` per line.

F marks a full line (a newline followed it), P a partial one (the rest follows in the next entry).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class LogEntry:
    timestamp: str
    stream: str
    partial: bool
    content: bytes


def parse_line(line: bytes) -> LogEntry | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    content = parts[3] if len(parts) == 4 else b""
    return LogEntry(parts[0].decode(), parts[1].decode(), parts[2] == b"P", content)
