"""DeferredRegistry builds the real registry once, on the first call, whichever thread makes it."""

import threading

from adapters.registry.deferred import DeferredRegistry
from domain.image_reference import parse
from domain.registries_conf import PullSource
from ports.registry import Platform, Registry
from tests.fakes.registry import InMemoryRegistry


def test_builds_on_first_use_and_only_once() -> None:
    built: list[InMemoryRegistry] = []
    gate = threading.Event()

    def build() -> Registry:
        gate.wait(5)
        built.append(InMemoryRegistry())
        return built[-1]

    deferred = DeferredRegistry(build)
    assert not deferred.built and built == []
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            deferred.resolve(PullSource(parse("absent.example/app:1"), False, False), None, Platform())
        except Exception as err:  # the fake's NotFound: what matters is who built it
            errors.append(err)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(built) == 1 and deferred.built
    assert len(errors) == 4 and all(type(err).__name__ == "Unavailable" for err in errors)
