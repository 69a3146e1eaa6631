"""NriPlugins in memory: tests connect FakeNriPlugin objects, which record what they hear and answer with
the replies they were given."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain.errors import Unavailable
from domain.nri import NriContainer, NriEvent, NriPod, NriReply, NriRequest, NriUpdate
from ports.nri import NriPlugin, UpdateHandler


@dataclass
class FakeNriPlugin:
    name: str
    events: frozenset[NriEvent] = frozenset(NriEvent)
    replies: dict[NriEvent, NriReply] = field(default_factory=dict)
    fail_on: frozenset[NriEvent] = frozenset()
    heard: list[NriRequest] = field(default_factory=list)
    synced: list[tuple[list[NriPod], list[NriContainer]]] = field(default_factory=list)
    closed: bool = False

    def subscribed(self, event: NriEvent) -> bool:
        return event in self.events

    def call(self, request: NriRequest) -> NriReply:
        if self.closed:
            raise Unavailable(f"NRI plugin {self.name} is gone")
        self.heard.append(request)
        if request.event in self.fail_on:
            raise Unavailable(f"NRI plugin {self.name} failed {request.event.name}")
        return self.replies.get(request.event, NriReply())

    def synchronize(self, pods: Sequence[NriPod], containers: Sequence[NriContainer]) -> list[NriUpdate]:
        self.synced.append((list(pods), list(containers)))
        return []

    def close(self) -> None:
        self.closed = True


class FakeNriPlugins:
    def __init__(self) -> None:
        self.on_connect: Callable[[NriPlugin], None] | None = None
        self.on_update: UpdateHandler | None = None

    def start(self, on_connect: Callable[[NriPlugin], None], on_update: UpdateHandler) -> None:
        self.on_connect, self.on_update = on_connect, on_update

    def stop(self) -> None:
        self.on_connect = None

    def connect(self, plugin: FakeNriPlugin) -> None:
        assert self.on_connect is not None, "start() first"
        self.on_connect(plugin)
