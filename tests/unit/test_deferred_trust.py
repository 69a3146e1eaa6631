"""DeferredPullGate builds the image trust once, at the first pull's check, whichever thread makes it, and
passes every check (and its refusal) through unchanged."""

import dataclasses
import threading

import pytest

from app.links.deferred_trust import DeferredPullGate
from domain.errors import FailedPrecondition
from domain.images import PullGate
from ports.registry import RegistryAuth, ResolvedImage

IMAGE = ResolvedImage(
    name="registry.example/app",
    tag="1",
    manifest_digest="sha256:" + "a" * 64,
    manifest_media_type="application/vnd.oci.image.manifest.v1+json",
    manifest=b"{}",
    config_digest="sha256:" + "b" * 64,
    config=b"{}",
    layers=[],
    source="registry.example",
)


class RecordingGate:
    """Refuses images of one name, as a policy would; records what it was asked."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, RegistryAuth | None, str]] = []

    def check(self, image: ResolvedImage, auth: RegistryAuth | None, namespace: str = "") -> None:
        self.checked.append((image.name, auth, namespace))
        if image.name.endswith("/refused"):
            raise FailedPrecondition("refused by policy")


def test_builds_on_first_check_only_once_and_passes_checks_through() -> None:
    built: list[RecordingGate] = []
    gate = threading.Event()

    def build() -> PullGate:
        gate.wait(5)
        built.append(RecordingGate())
        return built[-1]

    deferred = DeferredPullGate(build)
    assert built == []  # nothing is built before a pull asks
    auth = RegistryAuth(username="u", password="p")
    threads = [threading.Thread(target=deferred.check, args=(IMAGE, auth, f"ns{n}")) for n in range(4)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(built) == 1
    assert sorted(built[0].checked, key=lambda c: c[2]) == [(IMAGE.name, auth, f"ns{n}") for n in range(4)]
    refused = dataclasses.replace(IMAGE, name="registry.example/refused")
    with pytest.raises(FailedPrecondition, match="refused by policy"):
        deferred.check(refused, None)
    assert len(built) == 1 and built[0].checked[-1] == (refused.name, None, "")


def test_a_failed_build_is_retried_at_the_next_check() -> None:
    attempts: list[int] = []

    def build() -> PullGate:
        attempts.append(1)
        if len(attempts) == 1:
            raise FailedPrecondition("policy file unreadable")
        return RecordingGate()

    deferred = DeferredPullGate(build)
    with pytest.raises(FailedPrecondition):
        deferred.check(IMAGE, None)
    deferred.check(IMAGE, None)
    assert len(attempts) == 2
