"""The image service: pull, look up, list and remove images, and build container root file systems.

Pull resolves a name through registries.conf and the Registry (domain/image_sources.py, so every Registry
adapter sees the same decisions), skips layers the LayerStore already has, streams the others into it,
then records the image. Concurrent pulls of one reference (with the same credentials) share one
download: the first caller starts a pull worker, later callers wait for the same result. Each caller waits
with its own deadline and may be cancelled (its gRPC client went away); the pull is cancelled when no byte
arrived for `pull_progress_timeout` seconds or when it ran for `pull_deadline` seconds however steadily
bytes arrive (DeadlineExceeded for every waiter), or when every waiter has given up. A kubelet retry after
its own timeout joins a pull still under way instead of starting over.

The layers of one pull download and unpack at once, at most `max_concurrent_layers` of them (each on its
own thread: decompression, hashing and writing release the GIL), and each is committed as it completes:
a layer's chain id names it whatever order the stack is filled in. The first layer that fails cancels the
others through the pull's Cancellation, which makes the registry adapter shut down their connections, so a
layer blocked in a read stops at once; the pull returns the first error only once every layer task has
ended, and then releases every layer it committed, so a failed or abandoned pull leaves nothing behind. A
cancelled pull (watchdog, deadline, every caller gone) stops its downloads the same way.

Lookups accept what the kubelet and crictl send: an image id (`<hex>` or `sha256:<hex>`), an unambiguous id
prefix, a tag (`busybox` means `docker.io/library/busybox:latest`; short names also match on the
unqualified-search registries) or a digest reference `name@sha256:...`.
"""

import contextlib
import contextvars
import copy
import fnmatch
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from domain import image_reference
from domain.cancellation import Cancellation
from domain.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from domain.image_config import chain_ids, digest_hex, parse_image_config
from domain.image_sources import resolve_image
from domain.keyed_locks import KeyedLocks
from domain.pull_progress import PullProgress
from domain.registries_conf import RegistriesConf
from ports.credentials import CredentialStore
from ports.image_store import ImageConfig, ImageRecord, ImageStore
from ports.image_users import ImageUsers
from ports.layer_store import LayerIdmap, LayerStore, StorageUsage
from ports.metrics import PullMetrics
from ports.registry import Descriptor, Platform, Registry, RegistryAuth, ResolvedImage

_log = structlog.get_logger("pycrio.images")

_ID_OR_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{3,64})")
IMAGE_HOLDER_PREFIX = "image:"
# overlayfs stacks at most this many lower layers (the kernel's OVL_MAX_STACK; containers/storage's
# maxDepth): an image with more could be pulled but never run, so it is refused before any download.
MAX_IMAGE_LAYERS = 500
# (image as requested, credentials, pod namespace): pulls with the same key share one download.
_FlightKey = tuple[str, RegistryAuth | None, str]


def image_holder(image_id: str) -> str:
    return IMAGE_HOLDER_PREFIX + image_id


class PullGate(Protocol):
    def check(self, image: ResolvedImage, auth: RegistryAuth | None, namespace: str = "") -> None:
        """Raise when the image may not be pulled (signature policy, domain/trust.py); stores nothing."""
        ...


@dataclass(frozen=True)
class ContainerRootfs:
    path: Path
    image: ImageRecord


class _Flight:
    """One pull in progress and everyone waiting for it."""

    def __init__(self, now: float, progress: PullProgress | None = None) -> None:
        self.progress = progress or PullProgress(image="", registry="", started=now)
        self.done = threading.Event()
        self.started = now
        self.last_progress = now
        # Cancelled when the pull fails or is given up, and by its first layer failure: stops every download.
        self.stop = Cancellation()
        # One event per waiting caller, set when the flight settles.
        self.wakers: list[threading.Event] = []
        self.waiters = 0
        self.image_id = ""
        self.error: BaseException | None = None
        self.cancel_reason = ""
        # The first layer failure, while the worker waits for the pull's other layers to stop.
        self.layer_failure: BaseException | None = None

    def finish(self, image_id: str = "", error: BaseException | None = None) -> bool:
        """Settle the flight once; later outcomes (a worker waking after a watchdog failure) are dropped."""
        if self.done.is_set():
            return False
        self.image_id, self.error = image_id, error
        self.done.set()
        for waker in list(self.wakers):
            waker.set()
        if error is not None:
            self.stop.cancel(DeadlineExceeded(self.cancel_reason or "pull cancelled"))
        return True


class _LayerBatch:
    """The layer tasks of one pull: what they hold, and the first failure, which stops the rest."""

    def __init__(self, stop: Cancellation) -> None:
        self.lock = threading.Lock()
        self.stop = stop
        self.held: list[str] = []
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> bool:
        """Stop the batch (the error first, then the others' downloads); True for its first failure."""
        with self.lock:
            first = self.error is None
            if first:
                self.error = error
        self.stop.cancel(_LayerStopped())
        return first


class _LayerStopped(Exception):
    """Another layer of the same pull failed: this one stops (the other's error is the pull's)."""


class ImageService:
    def __init__(
        self,
        registry: Registry,
        layers: LayerStore,
        images: ImageStore,
        users: ImageUsers,
        trust: PullGate,
        pinned_images: Sequence[str] = (),
        pull_progress_timeout: float = 60.0,
        pull_progress_interval: float = 10.0,
        pull_deadline: float = 3600.0,
        max_concurrent_layers: int = 3,
        max_image_bytes: int = 32 * 1024**3,
        platform: Platform | None = None,
        registries_conf: Callable[[], RegistriesConf] = RegistriesConf,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        metrics: PullMetrics | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._layers = layers
        self._images = images
        self._users = users
        self._trust = trust
        self._pinned = [_pin_pattern(p) for p in pinned_images]
        self._progress_timeout = pull_progress_timeout
        self._progress_interval = pull_progress_interval
        self._pull_deadline = pull_deadline
        self._max_concurrent_layers = max(1, max_concurrent_layers)
        self._max_image_bytes = max_image_bytes
        self._platform = platform or Platform()
        self._registries_conf = registries_conf
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        self._metrics = metrics
        self._flights: dict[_FlightKey, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._image_locks = KeyedLocks()
        # Serialises tag moves between records (short; no I/O but the store's own writes).
        self._records_lock = threading.Lock()

    # -- pull -------------------------------------------------------------------------------------------

    def pull(
        self,
        image: str,
        auth: RegistryAuth | None = None,
        timeout: float | None = None,
        namespace: str = "",
        cancel: Cancellation | None = None,
    ) -> str:
        """Pull `image` (or join a pull of it already under way); returns the image id.

        Without `auth`, the node's credentials for the image (the pod's `namespace` first) are used.
        `namespace` is the pod's namespace when the kubelet sent the sandbox config: it may choose the
        signature policy, so pulls for different namespaces are not shared. `cancel` is this caller's
        own: once cancelled, the call raises its reason at once, and a pull nobody else waits for stops."""
        try:
            image_id = self._pull_or_join(image, auth, timeout, namespace, cancel)
        except Exception as error:
            if self._metrics is not None:
                # The error class is a short, fixed word (NotFound, Unavailable, DeadlineExceeded, ...).
                self._metrics.image_pull_finished(False, type(error).__name__)
            raise
        if self._metrics is not None:
            self._metrics.image_pull_finished(True)
        return image_id

    def _pull_or_join(
        self,
        image: str,
        auth: RegistryAuth | None,
        timeout: float | None,
        namespace: str,
        cancel: Cancellation | None,
    ) -> str:
        if not image:
            raise InvalidArgument("no image specified")
        if auth is None and self._credentials is not None:
            auth = self._credentials.lookup(str(image_reference.parse(image)), namespace)
        deadline = None if timeout is None else self._clock() + timeout
        key = (image, auth, namespace)
        wake = threading.Event()
        with self._flights_lock:
            flight = self._flights.get(key)
            start = flight is None
            if flight is None:
                progress = PullProgress(image, _registry_of(image), self._clock(), self._progress_interval)
                flight = self._flights[key] = _Flight(self._clock(), progress)
            flight.waiters += 1
            flight.wakers.append(wake)
        if start:
            # The worker runs in the caller's context: its log lines and trace spans belong to this call.
            context = contextvars.copy_context()
            worker = threading.Thread(
                target=context.run, args=(self._fly, key, flight), name=f"pull {image}", daemon=True
            )
            worker.start()
        try:
            with cancel.hook(wake.set) if cancel is not None else contextlib.nullcontext():
                return self._wait(key, flight, deadline, cancel, wake)
        finally:
            with self._flights_lock:
                flight.wakers.remove(wake)
                flight.waiters -= 1
                if flight.waiters == 0 and not flight.done.is_set():
                    flight.cancel_reason = f"pulling {image}: every caller gave up waiting"
                    self._settle(key, flight, error=DeadlineExceeded(flight.cancel_reason))

    def _settle(
        self,
        key: "_FlightKey",
        flight: _Flight,
        image_id: str = "",
        error: BaseException | None = None,
    ) -> None:
        """Record the outcome and let the next pull of the key start afresh. Call with _flights_lock."""
        if flight.finish(image_id, error) and self._flights.get(key) is flight:
            del self._flights[key]

    def _wait(
        self,
        key: "_FlightKey",
        flight: _Flight,
        deadline: float | None,
        cancel: Cancellation | None,
        wake: threading.Event,
    ) -> str:
        """Until the flight settles, the caller's deadline passes or it is cancelled; `wake` is set by the
        flight settling and by the caller's cancellation. The flight's own limits are enforced here too."""
        image = key[0]
        while True:
            # Cleared before looking: whatever happens from here on sets it again for the wait below.
            wake.clear()
            if flight.done.is_set():
                break
            if cancel is not None:
                cancel.check()
            now = self._clock()
            if deadline is not None and now >= deadline:
                raise DeadlineExceeded(f"pulling {image}: the caller's deadline passed")
            reason = self._overdue(image, flight, now)
            if reason:
                with self._flights_lock:
                    if not flight.done.is_set():
                        flight.cancel_reason = reason
                        _log.warning("pull cancelled", image=image, error=reason)
                        # A layer that failed before another got stuck is what the callers must hear of.
                        failure = flight.layer_failure or DeadlineExceeded(reason)
                        self._settle(key, flight, error=failure)
                continue
            wait = flight.started + self._pull_deadline - now
            if self._progress_timeout > 0:
                wait = min(wait, self._progress_timeout - (now - flight.last_progress))
            if deadline is not None:
                wait = min(wait, deadline - now)
            wake.wait(max(0.0, min(wait, 3600.0)))
        if flight.error is not None:
            raise copy.copy(flight.error)
        return flight.image_id

    def _overdue(self, image: str, flight: _Flight, now: float) -> str:
        """Why the flight must be cancelled now (no progress, or past its whole-pull deadline), or ""."""
        if self._progress_timeout > 0 and now - flight.last_progress >= self._progress_timeout:
            return (
                f"pulling {image}: no progress for {self._progress_timeout:g}s on "
                f"{flight.progress.stalled_at()}, cancelled"
            )
        if now - flight.started >= self._pull_deadline:
            return (
                f"pulling {image}: not done after {self._pull_deadline:g}s, cancelled "
                "(config key image.pull_deadline)"
            )
        return ""

    def _fly(self, key: "_FlightKey", flight: _Flight) -> None:
        image, auth, namespace = key
        try:
            image_id = self._pull(image, auth, namespace, flight)
        except Exception as err:
            _log.info("pull failed", image=image, error=str(err))
            with self._flights_lock:
                self._settle(key, flight, error=err)
        else:
            with self._flights_lock:
                self._settle(key, flight, image_id=image_id)

    def _check_cancelled(self, flight: _Flight) -> None:
        if flight.done.is_set():
            raise DeadlineExceeded(flight.cancel_reason or "pull cancelled")

    def _watch(self, chunks: Iterable[bytes], flight: _Flight, batch: _LayerBatch) -> Iterator[bytes]:
        """Pass a blob through, noting progress and stopping as soon as the pull is cancelled or another of
        its layers failed."""
        for chunk in chunks:
            self._check_stopped(flight, batch)
            flight.last_progress = self._clock()
            flight.progress.received(len(chunk), flight.last_progress)
            if self._metrics is not None:
                self._metrics.image_pull_bytes(len(chunk))
            yield chunk
        self._check_stopped(flight, batch)

    def _check_stopped(self, flight: _Flight, batch: _LayerBatch) -> None:
        self._check_cancelled(flight)
        if batch.stop.cancelled:
            raise _LayerStopped()

    def _resolve(self, image: str, auth: RegistryAuth | None) -> ResolvedImage:
        """Where the image comes from is decided here, the same for every Registry adapter."""
        return resolve_image(self._registry, self._registries_conf, image, auth, self._platform)

    def _pull(self, image: str, auth: RegistryAuth | None, namespace: str, flight: _Flight) -> str:
        resolved = self._resolve(image, auth)
        if len(resolved.layers) > MAX_IMAGE_LAYERS:
            raise InvalidArgument(
                f"{image}: manifest lists {len(resolved.layers)} layers, more than the {MAX_IMAGE_LAYERS} "
                "overlayfs stacks in one root file system"
            )
        flight.last_progress = self._clock()
        # `source` is the mirror or origin the blobs come from: `host[/repository]`.
        flight.progress.resolved(resolved.source.split("/", 1)[0], resolved.layers, flight.last_progress)
        self._check_cancelled(flight)
        # Before anything of the image is stored: a refused image leaves nothing behind.
        self._trust.check(resolved, auth, namespace)
        flight.last_progress = self._clock()
        self._check_cancelled(flight)
        parsed = parse_image_config(resolved.config, resolved.config_digest)
        if len(parsed.diff_ids) != len(resolved.layers):
            raise InvalidArgument(
                f"{image}: manifest has {len(resolved.layers)} layers, config {len(parsed.diff_ids)}"
            )
        image_id = digest_hex(resolved.config_digest, "image config digest")
        self._check_image_size(image, sum(blob.size for blob in resolved.layers), "compressed ")
        chains = chain_ids(parsed.diff_ids)
        holder = image_holder(image_id)
        with self._image_locks.hold(image_id):
            known = self._images.get(image_id) is not None
            batch = _LayerBatch(flight.stop)
            try:
                self._fetch_layers(image, resolved, auth, parsed.diff_ids, chains, holder, flight, batch)
                self._check_cancelled(flight)
                self._record(resolved, image_id, chains, parsed.config, parsed.document)
            except BaseException:
                if not known:
                    for chain in batch.held:
                        self._layers.release(chain, holder)
                raise
        _log.info("pulled image", image=image, id=image_id)
        return image_id

    def _fetch_layers(
        self,
        image: str,
        resolved: ResolvedImage,
        auth: RegistryAuth | None,
        diff_ids: Sequence[str],
        chains: Sequence[str],
        holder: str,
        flight: _Flight,
        batch: _LayerBatch,
    ) -> None:
        """Hold each layer already present and download and unpack the others, a bounded number at once.

        Returns (or raises the first failure) only once every layer task has ended: by then `batch.held`
        names every layer this pull holds, for the caller to release if the pull fails."""
        jobs = list(enumerate(zip(resolved.layers, diff_ids, ["", *chains[:-1]], chains, strict=True)))
        if not jobs:
            return

        def run(index: int, blob: Descriptor, diff_id: str, parent: str, chain: str) -> None:
            try:
                self._check_stopped(flight, batch)
                self._fetch_layer(resolved, auth, index, blob, diff_id, parent, chain, holder, flight, batch)
                with batch.lock:
                    held = list(batch.held)
                self._check_image_size(image, sum(self._layer_size(c) for c in held))
            except BaseException as error:
                if batch.fail(error):
                    flight.layer_failure = error

        workers = min(self._max_concurrent_layers, len(jobs))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"pull {image} layer") as pool:
            for index, job in jobs:
                # Each task in its own copy of the pull's context: its log lines and spans belong to the pull.
                pool.submit(contextvars.copy_context().run, functools.partial(run, index, *job))
        if batch.error is not None:
            raise batch.error

    def _fetch_layer(
        self,
        resolved: ResolvedImage,
        auth: RegistryAuth | None,
        index: int,
        blob: Descriptor,
        diff_id: str,
        parent: str,
        chain: str,
        holder: str,
        flight: _Flight,
        batch: _LayerBatch,
    ) -> None:
        if self._layers.hold(chain, holder):
            flight.progress.layer_present(blob)
        else:
            flight.progress.layer_started(blob, index, self._clock())
            download = self._registry.open_blob(resolved, blob, auth, flight.stop)
            try:
                self._layers.unpack(parent, diff_id, self._watch(download, flight, batch), holder)
            except BaseException:
                flight.progress.layer_ended(blob, index)
                raise
            finally:
                # A stopped download lets go of its connection now, not when the error is collected.
                close = getattr(download, "close", None)
                if close is not None:
                    close()
            flight.progress.layer_finished(blob, index, self._clock())
        with batch.lock:
            batch.held.append(chain)

    def _check_image_size(self, image: str, size: int, kind: str = "") -> None:
        if size > self._max_image_bytes:
            raise ResourceExhausted(
                f"pulling {image}: its layers take more than {self._max_image_bytes} {kind}bytes "
                "(config key image.max_image_bytes)"
            )

    def _layer_size(self, chain: str) -> int:
        layer = self._layers.get(chain)
        return layer.size if layer is not None else 0

    def _record(
        self,
        resolved: ResolvedImage,
        image_id: str,
        chains: list[str],
        config: ImageConfig,
        document: dict[str, Any],
    ) -> None:
        tag = f"{resolved.name}:{resolved.tag}" if resolved.tag else ""
        repo_digest = resolved.repo_digest
        size = sum(self._layer_size(chain) for chain in chains)
        with self._records_lock:
            if tag:
                previous = self._images.by_tag(tag)
                if previous is not None and previous.id != image_id:
                    # The tag moved to a newer image; the old one stays, reachable by id and digest.
                    self._images.put(
                        replace(previous, repo_tags=tuple(t for t in previous.repo_tags if t != tag))
                    )
            current = self._images.get(image_id)
            tags = list(current.repo_tags) if current else []
            digests = list(current.repo_digests) if current else []
            if tag and tag not in tags:
                tags.append(tag)
            if repo_digest not in digests:
                digests.append(repo_digest)
            self._images.put(
                ImageRecord(
                    id=image_id,
                    repo_tags=tuple(tags),
                    repo_digests=tuple(digests),
                    layers=tuple(chains),
                    size=size,
                    config=config,
                    oci_config=document,
                    pulled_at=current.pulled_at if current else self._wall_clock_ns(),
                )
            )

    def pulls_in_progress(self) -> list[PullProgress]:
        """A copy of each running pull's progress (the metrics endpoint reads these)."""
        with self._flights_lock:
            return [flight.progress.snapshot() for flight in self._flights.values()]

    # -- look-ups -----------------------------------------------------------------------------------------

    def status(self, reference: str) -> ImageRecord | None:
        """The image a reference names, None when there is none."""
        reference = reference.strip()
        if not reference:
            raise InvalidArgument("no image specified")
        image_reference.check_length(reference)
        ambiguous = False
        as_id = _ID_OR_PREFIX.fullmatch(reference)
        if as_id is not None:
            hex_part = as_id.group(1)
            if len(hex_part) == 64:
                # A full id is never a name (docker refuses 64-hex names).
                return self._images.get(hex_part)
            matches = self._images.by_id_prefix(hex_part)
            if len(matches) == 1:
                return matches[0]
            ambiguous = len(matches) > 1
            if reference.startswith("sha256:"):
                if ambiguous:
                    raise InvalidArgument(f"image id prefix {reference!r} is ambiguous")
                return None
        for candidate in self._candidates(reference):
            if candidate.digest:
                found = self._images.by_digest(f"{candidate.name}@{candidate.digest}")
            else:
                found = self._images.by_tag(
                    f"{candidate.name}:{candidate.tag or image_reference.DEFAULT_TAG}"
                )
            if found is not None:
                return found
        if ambiguous:
            raise InvalidArgument(f"image id prefix {reference!r} is ambiguous")
        return None

    def _candidates(self, reference: str) -> list[image_reference.ImageReference]:
        candidates = [image_reference.parse(reference)]
        if image_reference.is_short_name(reference):
            for registry in self._registries_conf().search_registries():
                qualified = image_reference.qualify(reference, registry)
                if qualified not in candidates:
                    candidates.append(qualified)
        return candidates

    def list_images(self, reference: str = "") -> list[ImageRecord]:
        """Every image, or the one a reference names (as cri-o reads the CRI filter)."""
        if reference:
            found = self.status(reference)
            return [found] if found is not None else []
        return self._images.list_images()

    def set_pinned_images(self, patterns: Sequence[str]) -> None:
        """New pinned_images (a reload); one assignment, so a concurrent is_pinned sees old or new."""
        self._pinned = [_pin_pattern(p) for p in patterns]

    def is_pinned(self, image: ImageRecord) -> bool:
        names = (*image.repo_tags, *image.repo_digests)
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self._pinned for name in names)

    def fs_usage(self) -> StorageUsage:
        return self._layers.usage()

    # -- removal ---------------------------------------------------------------------------------------

    def remove(self, reference: str) -> None:
        """Remove the image a reference names, with all its names; an absent image is not an error."""
        image = self.status(reference)
        if image is None:
            return
        with self._image_locks.hold(image.id):
            using = self._users.containers_using(image.id)
            if using:
                raise FailedPrecondition(
                    f"image {image.id} ({', '.join(image.repo_tags) or 'untagged'}) is in use by "
                    f"container {', '.join(using)}"
                )
            with self._records_lock:
                self._images.delete(image.id)
            for chain in image.layers:
                self._layers.release(chain, image_holder(image.id))
        _log.info("removed image", id=image.id, tags=list(image.repo_tags))

    def recover(self) -> None:
        """After a crash between deleting a record and releasing its layers: release what nobody records."""
        known = {image.id for image in self._images.list_images()}
        for layer in self._layers.list_layers():
            for holder in layer.holders:
                if holder.startswith(IMAGE_HOLDER_PREFIX) and holder[len(IMAGE_HOLDER_PREFIX) :] not in known:
                    _log.warning("releasing layer of a vanished image", layer=layer.chain_id, holder=holder)
                    self._layers.release(layer.chain_id, holder)

    # -- container root file systems -------------------------------------------------------------------

    def create_rootfs(
        self, container_id: str, image: str, idmap: LayerIdmap | None = None
    ) -> ContainerRootfs:
        """Mount a writable root file system for a container over the image's layers (idempotent).

        The container holds the layers, so they outlive the image record until `remove_rootfs`.
        """
        found = self.status(image)
        if found is None:
            raise NotFound(f"image {image} not found")
        with self._image_locks.hold(found.id):
            current = self._images.get(found.id)
            if current is None:
                raise NotFound(f"image {image} was removed")
            path = self._layers.create_rootfs(container_id, list(current.layers), current.id, idmap)
        return ContainerRootfs(path, current)

    def unmount_rootfs(self, container_id: str) -> None:
        self._layers.unmount_rootfs(container_id)

    def remove_rootfs(self, container_id: str) -> None:
        self._layers.remove_rootfs(container_id)

    def writable_layer(self, container_id: str) -> Path | None:
        return self._layers.writable_layer(container_id)


def _registry_of(reference: str) -> str:
    try:
        return image_reference.parse(reference).registry
    except InvalidArgument:
        return reference


def _pin_pattern(pattern: str) -> str:
    """A pinned_images entry as a glob over repo tags and digests; exact short names are normalised."""
    if any(c in pattern for c in "*?["):
        return pattern
    try:
        parsed = image_reference.parse(pattern)
    except InvalidArgument:
        return pattern
    if not parsed.tag and not parsed.digest:
        parsed = replace(parsed, tag=image_reference.DEFAULT_TAG)
    return str(parsed)
