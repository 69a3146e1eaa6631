"""Streaming requests: the kubelet's validation rules, single-use expiring tokens, URLs."""

import pytest

from domain.errors import InvalidArgument, NotFound, ResourceExhausted
from domain.streaming import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    RequestCache,
    StreamingService,
    validate,
)
from ports.streaming_targets import StreamContainer
from tests.fakes.streaming import FakeStreamTargets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ExecRequest("c", ("sh",), tty=True, stdout=True, stderr=True), "tty and stderr"),
        (ExecRequest("c", ("sh",)), "one of stdin, stdout, or stderr"),
        (ExecRequest("", ("sh",), stdout=True), "container_id"),
        (ExecRequest("c", (), stdout=True), "command cannot be empty"),
        (AttachRequest("c", tty=True, stdin=True, stderr=True), "tty and stderr"),
        (AttachRequest("c"), "one of stdin, stdout, or stderr"),
        (PortForwardRequest(""), "pod_sandbox_id"),
        (PortForwardRequest("p", (0,)), "not a valid port"),
        (PortForwardRequest("p", (70000,)), "not a valid port"),
    ],
)
def test_invalid_requests_are_refused(request_: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate(request_)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "request_",
    [
        ExecRequest("c", ("ls",), stdin=True),
        ExecRequest("c", ("ls",), tty=True, stdin=True, stdout=True),
        AttachRequest("c", stdout=True, stderr=True),
        PortForwardRequest("p"),
        PortForwardRequest("p", (80, 65535)),
    ],
)
def test_valid_requests_pass(request_: object) -> None:
    validate(request_)  # type: ignore[arg-type]


def test_a_token_is_consumed_once() -> None:
    cache = RequestCache(ttl=60, clock=Clock())
    request = ExecRequest("c", ("ls",), stdout=True)
    token = cache.insert(request)
    assert cache.consume(token) == request
    assert cache.consume(token) is None


def test_tokens_expire_unused_after_the_ttl() -> None:
    clock = Clock()
    cache = RequestCache(ttl=60, clock=clock)
    early = cache.insert(PortForwardRequest("p"))
    clock.now += 30
    late = cache.insert(PortForwardRequest("q"))
    clock.now += 30
    assert cache.consume(early) is None
    assert cache.consume(late) == PortForwardRequest("q")


def test_tokens_are_random_and_url_safe() -> None:
    cache = RequestCache(ttl=60, clock=Clock())
    tokens = {cache.insert(PortForwardRequest("p")) for _ in range(200)}
    assert len(tokens) == 200
    assert all(t.replace("-", "").replace("_", "").isalnum() and len(t) >= 11 for t in tokens)


def test_too_many_unused_tokens_is_resource_exhausted() -> None:
    clock = Clock()
    cache = RequestCache(ttl=60, clock=clock, max_in_flight=3)
    for _ in range(3):
        cache.insert(PortForwardRequest("p"))
    with pytest.raises(ResourceExhausted):
        cache.insert(PortForwardRequest("p"))
    clock.now += 61  # expired ones make room again
    cache.insert(PortForwardRequest("p"))
    assert len(cache) == 1


def test_service_returns_a_url_per_kind_and_needs_the_target() -> None:
    targets = FakeStreamTargets()
    targets.containers["c1"] = StreamContainer("c1")
    targets.sandboxes["p1"] = "/run/netns/p1"
    cache = RequestCache(ttl=60, clock=Clock())
    service = StreamingService(cache, targets, lambda: "http://127.0.0.1:1234")
    exec_url = service.url_for(ExecRequest("c1", ("ls",), stdout=True))
    attach_url = service.url_for(AttachRequest("c1", stdout=True))
    forward_url = service.url_for(PortForwardRequest("p1", (80,)))
    assert exec_url.startswith("http://127.0.0.1:1234/exec/")
    assert attach_url.startswith("http://127.0.0.1:1234/attach/")
    assert forward_url.startswith("http://127.0.0.1:1234/portforward/")
    assert cache.consume(forward_url.rsplit("/", 1)[1]) == PortForwardRequest("p1", (80,))
    with pytest.raises(NotFound):
        service.url_for(ExecRequest("absent", ("ls",), stdout=True))
    with pytest.raises(NotFound):
        service.url_for(PortForwardRequest("absent"))
    with pytest.raises(InvalidArgument):  # validation comes before the lookup
        service.url_for(ExecRequest("absent", ("ls",)))
    assert len(cache) == 2
