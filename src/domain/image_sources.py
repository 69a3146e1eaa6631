"""Where an image comes from, decided once for every Registry adapter, the fake as much as the real one.

registries.conf (`domain/registries_conf.py`) turns a user-written name into candidates (search registries or
an alias for a short name) and each candidate into sources (mirrors in order, then the rewritten location);
a blocked registry has none. The Registry port fetches from one source at a time. The first source that
serves the image wins; when none does, the error lists why each failed, and its kind is the most telling
failure: unreachable (RegistryUnavailable), too slow, refused credentials, too large, broken content,
blocked, then not found.
"""

from collections.abc import Callable
from dataclasses import replace

import structlog

from domain.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PycrioError,
    RegistryUnavailable,
    ResourceExhausted,
    Unavailable,
)
from domain.registries_conf import RegistriesConf
from ports.registry import Platform, Registry, RegistryAuth, ResolvedImage

_log = structlog.get_logger("pycrio.images")

# Which failure decides the final error when every source failed: the first kind present in this order.
_ERROR_ORDER: tuple[type[PycrioError], ...] = (
    Unavailable,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Internal,
    FailedPrecondition,
)


def resolve_image(
    registry: Registry,
    registries_conf: Callable[[], RegistriesConf],
    image: str,
    auth: RegistryAuth | None,
    platform: Platform,
) -> ResolvedImage:
    """The image as the first source that serves it has it, named as the user's name means it.

    `registries_conf` is read for every pull, so edits apply without a restart; a broken file is
    FailedPrecondition naming it."""
    try:
        conf = registries_conf()
    except InvalidArgument as err:
        raise FailedPrecondition(f"registries configuration: {err}") from None
    failures: list[tuple[str, PycrioError]] = []
    for candidate in conf.candidates(image):
        if candidate.blocked:
            blocked = FailedPrecondition("registry is blocked in registries.conf")
            failures.append((str(candidate.reference), blocked))
            continue
        for source in candidate.sources:
            try:
                found = registry.resolve(source, auth, platform)
            except PycrioError as failure:
                _log.info("source failed", image=image, source=source.description, error=str(failure))
                failures.append((source.description, failure))
                continue
            return replace(found, name=candidate.reference.name, tag=candidate.reference.tag)
    raise _final_error(f"pulling image {image!r}", failures)


def _final_error(what: str, failures: list[tuple[str, PycrioError]]) -> PycrioError:
    details = "; ".join(f"{where}: {failure}" for where, failure in failures)
    message = f"{what}: {details}" if details else f"{what}: no source to try"
    for kind in _ERROR_ORDER:
        if any(isinstance(failure, kind) for _, failure in failures):
            # Unreachable everywhere: the kubelet shows RegistryUnavailable rather than ErrImagePull.
            return RegistryUnavailable(message) if kind is Unavailable else kind(message)
    return NotFound(message)
