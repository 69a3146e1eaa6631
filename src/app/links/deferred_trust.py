"""The image service's signature check, built at the first pull instead of at start-up.

The policy code, the key and lookaside readers and the GPG verifier (domain/trust.py, adapters/trust/) are
18 modules: 0.7 MiB of Python objects imported alone, 0.1-0.3 MiB of the idle daemon's RSS (docs/bench.md,
"Idle cost"); a node that never pulls never needs them. The policy itself is read at each pull, as before:
building later changes no answer.
"""

from collections.abc import Callable

from domain.built_once import BuiltOnce
from domain.images import PullGate
from ports.registry import RegistryAuth, ResolvedImage


class DeferredPullGate:
    def __init__(self, build: Callable[[], PullGate]) -> None:
        self._once = BuiltOnce(build)

    def check(self, image: ResolvedImage, auth: RegistryAuth | None, namespace: str = "") -> None:
        self._once.get().check(image, auth, namespace)
