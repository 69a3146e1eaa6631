"""A Registry built on its first use, so a daemon that pulls nothing never loads the HTTP client.

httpx and the two TLS clients HttpRegistry makes up front (with the system CA bundle loaded) are about
5 MiB of the daemon's memory; a node whose images are all present may never need them.
"""

from collections.abc import Callable, Iterator

from domain.built_once import BuiltOnce
from domain.cancellation import Cancellation
from domain.registries_conf import PullSource
from ports.registry import Descriptor, Platform, Registry, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature


class DeferredRegistry:
    def __init__(self, build: Callable[[], Registry]) -> None:
        self._once = BuiltOnce(build)

    def _registry(self) -> Registry:
        return self._once.get()

    def resolve(self, source: PullSource, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        return self._registry().resolve(source, auth, platform)

    def open_blob(
        self,
        image: ResolvedImage,
        blob: Descriptor,
        auth: RegistryAuth | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        return self._registry().open_blob(image, blob, auth, cancel)

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        return self._registry().extension_signatures(image, auth)

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        return self._registry().signature_attachments(image, auth)

    @property
    def built(self) -> bool:
        return self._once.built is not None

    def close(self) -> None:
        """Closes the registry's connections, if it was ever built and can be closed."""
        close = getattr(self._once.built, "close", None)
        if close is not None:
            close()
