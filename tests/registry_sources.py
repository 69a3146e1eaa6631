"""A Registry adapter asked the way the image service asks it: registries.conf decides the sources
(domain/image_sources.py), the adapter fetches from each. For the suites that resolve names as a user writes
them, so the fake and the real adapter are driven through the same decisions."""

from collections.abc import Callable, Iterator

from domain.cancellation import Cancellation
from domain.image_sources import resolve_image
from domain.registries_conf import RegistriesConf
from ports.registry import Descriptor, Platform, Registry, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature


class ConfiguredRegistry:
    def __init__(self, registry: Registry, conf: RegistriesConf | Callable[[], RegistriesConf]) -> None:
        self.registry = registry
        self._conf = conf if callable(conf) else (lambda: conf)

    def resolve(self, image: str, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        return resolve_image(self.registry, self._conf, image, auth, platform)

    def open_blob(
        self,
        image: ResolvedImage,
        blob: Descriptor,
        auth: RegistryAuth | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        return self.registry.open_blob(image, blob, auth, cancel)

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        return self.registry.extension_signatures(image, auth)

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        return self.registry.signature_attachments(image, auth)

    def close(self) -> None:
        close = getattr(self.registry, "close", None)
        if close is not None:
            close()
