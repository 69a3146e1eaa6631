"""Attach to tty and non-tty processes; URLs are single use, expire, and name one kind of request."""

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.streaming import AttachRequest, ExecRequest
from tests.streaming.conftest import Streaming
from tests.streaming_client import HttpError, SpdyClient, SpdyCommand, WebSocketCommand, http_get, wait_until

_ids = itertools.count()


@pytest.fixture
def container_id(streaming: Streaming) -> Iterator[str]:
    yield f"attach-{next(_ids)}"


def _start(streaming: Streaming, container_id: str, cmd: list[str], **flags: bool) -> None:
    streaming.targets.containers[container_id] = streaming.backend.start_container(container_id, cmd, **flags)


def test_attach_non_tty_with_stdin_once_gets_both_streams_and_closes_stdin(
    streaming: Streaming, container_id: str
) -> None:
    script = 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo stdin-closed'
    _start(streaming, container_id, ["sh", "-c", script], stdin=True, stdin_once=True)
    url = streaming.url(AttachRequest(container_id, stdin=True, stdout=True, stderr=True))
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=True, tty=False)
    command.send(b"a\n")
    assert command.stdout is not None and command.stderr is not None
    command.stdout.read_until(lambda out: b"out:a\n" in out)
    command.stderr.read_until(lambda err: b"err:a\n" in err)
    command.close_stdin()  # the first detach of a stdin_once container closes its stdin
    result = command.wait()
    assert result.stdout == b"out:a\nstdin-closed\n"
    assert result.stderr == b"err:a\n"
    assert result.exit_code == 0


def test_attach_tty_echoes_input_and_honours_resize(streaming: Streaming, container_id: str) -> None:
    _start(streaming, container_id, ["sh", "-c", "while read l; do stty size; done"], tty=True, stdin=True)
    url = streaming.url(AttachRequest(container_id, tty=True, stdin=True, stdout=True))
    command = WebSocketCommand(url, ["v5.channel.k8s.io"])
    command.resize(90, 33)
    for attempt in range(1, 51):
        command.send(b"go\n")
        out = command.client.read_until(1, lambda b, n=attempt: b.count(b"\n") >= 2 * n)
        if b"33 90" in out:
            break
    assert b"go\r\n" in command.client.channel(1)  # the terminal echoes
    assert b"33 90" in command.client.channel(1)
    command.client.close()  # detach; the container keeps running
    pid = streaming.backend.container_pid(container_id)
    assert wait_until(lambda: _alive(pid))


def test_attach_without_stdin_streams_output_until_the_client_leaves(
    streaming: Streaming, container_id: str
) -> None:
    _start(streaming, container_id, ["sh", "-c", "while :; do echo tick; sleep 0.05; done"])
    url = streaming.url(AttachRequest(container_id, stdout=True))
    command = SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False)
    assert command.stdout is not None
    command.stdout.read_until(lambda out: out.count(b"tick") >= 3)
    command.client.close()
    assert _alive(streaming.backend.container_pid(container_id))


def test_attach_ignores_stdin_for_a_container_created_without_it(
    streaming: Streaming, container_id: str, tmp_path: Path
) -> None:
    flag = tmp_path / "stop"
    script = f"while [ ! -e {flag} ]; do echo tick; sleep 0.05; done; echo done"
    _start(streaming, container_id, ["sh", "-c", script])
    url = streaming.url(AttachRequest(container_id, stdin=True, stdout=True))
    command = SpdyCommand(url, stdin=True, stdout=True, stderr=False, tty=False)
    assert command.stdout is not None
    command.stdout.read_until(lambda out: b"tick" in out)
    command.send(b"ignored\n")
    command.close_stdin()
    flag.touch()
    result = command.wait()
    assert set(result.stdout.split()) == {b"tick", b"done"}
    assert result.exit_code == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between listing and reading
        return False


# ------------------------------------------------------------------------------------------------ tokens


def test_a_url_works_once(streaming: Streaming) -> None:
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False).wait()
    with pytest.raises(HttpError) as second:
        SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False)
    assert second.value.status == 404


def test_an_expired_url_is_refused(streaming: Streaming) -> None:
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    streaming.clock.advance(61)
    with pytest.raises(HttpError) as refused:
        WebSocketCommand(url)
    assert refused.value.status == 404


def test_a_token_only_opens_its_own_kind(streaming: Streaming) -> None:
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    with pytest.raises(HttpError) as wrong:
        SpdyCommand(url.replace("/exec/", "/attach/"), stdin=False, stdout=True, stderr=False, tty=False)
    assert wrong.value.status == 404
    # The failed upgrade consumed the token: a URL is tried once, whatever happens.
    with pytest.raises(HttpError) as again:
        SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False)
    assert again.value.status == 404


def test_unknown_paths_and_plain_requests_are_refused(streaming: Streaming) -> None:
    base = streaming.server.base_url
    with pytest.raises(HttpError) as unknown:
        SpdyCommand(f"{base}/exec/not-a-token", stdin=False, stdout=True, stderr=False, tty=False)
    assert unknown.value.status == 404
    assert http_get(f"{base}/metrics")[0] == 404
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    assert http_get(url)[0] == 400  # no upgrade requested
    # A plain GET (a scanner, a proxy's probe) does not use the token up: the real client still gets in.
    SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False).wait()


def test_spdy_without_a_protocol_version_or_with_an_unknown_one(streaming: Streaming) -> None:
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    with pytest.raises(HttpError) as missing:
        SpdyClient(url, protocols=[])
    assert missing.value.status == 400
    url = streaming.url(ExecRequest("exec-target", ("true",), stdout=True))
    with pytest.raises(HttpError) as unknown:
        SpdyCommand(url, False, True, False, False, protocols=["v9.channel.k8s.io"])
    assert unknown.value.status == 403
    assert b"v4.channel.k8s.io" in unknown.value.body
