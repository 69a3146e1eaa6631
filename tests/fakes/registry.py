"""An in-memory Registry: images are added by tests, and it checks digests the way the real adapter does.

Registries are keyed by host. Which host and name to ask is registries.conf's decision in the domain
(domain/image_sources.py), as for the real adapter. `pusher(host)` gives the same push interface as a real
test registry, so fixture builders work on both; `add(name, layers)` pushes a small OCI image in one call.
Tests can make a host unreachable, require credentials, corrupt a stored blob, count downloads, or hold a
blob mid-stream (a `Gate`) to see pulls share a download or stall, and see how many blobs stream at once.
"""

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from domain.cancellation import Cancellation
from domain.errors import Internal, InvalidArgument, NotFound, PycrioError, Unavailable
from domain.image_reference import ImageReference, check_digest, parse
from domain.manifests import ImageIndex, choose_platform, layer_compression, media_type_of, parse_manifest
from domain.registries_conf import PullSource
from ports.registry import Descriptor, Platform, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature
from tests.layer_tars import Layer, image_config

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class _Repository:
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class _Host:
    repositories: dict[str, _Repository] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None
    reachable: bool = True


@dataclass
class StoredImage:
    config: bytes
    layers: list[Layer]
    manifest: bytes

    @property
    def config_digest(self) -> str:
        return _sha256(self.config)


@dataclass
class Gate:
    """Stops a blob's stream after its first chunk until `release` is set or the reader is cancelled."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Set when the reader's cancellation, not the release, ended the wait.
    cancelled: threading.Event = field(default_factory=threading.Event)


class FakePushTarget:
    def __init__(self, registry: "InMemoryRegistry", host: str) -> None:
        self._registry, self._host = registry, host

    @property
    def host(self) -> str:
        return self._host

    def blob(self, repository: str, data: bytes) -> str:
        return self._registry.add_blob(self._host, data)

    def manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        return self._registry.add_manifest(f"{self._host}/{repository}", media_type, body, reference)


class InMemoryRegistry:
    def __init__(self, chunk_size: int = 64 << 10) -> None:
        self._hosts: dict[str, _Host] = {}
        self.chunk_size = chunk_size
        self.resolves = 0
        self.blob_downloads: dict[str, int] = {}
        self.gates: dict[str, Gate] = {}
        # Blob streams under way now, and the most there ever were at once.
        self.streaming = 0
        self.most_streaming = 0
        # Sigstore attachments set by tests, by manifest digest (besides those pushed as `.sig` tags).
        self.attachments: dict[str, list[SigstoreSignature]] = {}
        # Signatures served through a registry signature API, by manifest digest; None: no such API.
        self.extension: dict[str, list[bytes]] | None = None
        self._lock = threading.Lock()

    # -- test set-up ----------------------------------------------------------------------------------------

    def pusher(self, host: str) -> FakePushTarget:
        return FakePushTarget(self, host)

    def _host(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host, _Host())

    def add_blob(self, host: str, data: bytes) -> str:
        digest = _sha256(data)
        self._host(host).blobs[digest] = data
        return digest

    def add_manifest(self, name: str, media_type: str, body: bytes, reference: str) -> str:
        """Store a manifest under a tag or its digest; blobs and children must already be there."""
        reference_obj = parse(name)
        host = self._host(reference_obj.registry)
        digest = _sha256(body)
        parsed = parse_manifest(body, media_type)
        repository = host.repositories.setdefault(reference_obj.path, _Repository())
        if isinstance(parsed, ImageIndex):
            for entry in parsed.manifests:
                if entry.descriptor.digest not in repository.manifests:
                    raise InvalidArgument(f"index refers to unknown manifest {entry.descriptor.digest}")
        else:
            for descriptor in [parsed.config, *parsed.layers]:
                if descriptor.digest not in host.blobs:
                    raise InvalidArgument(f"manifest refers to unknown blob {descriptor.digest}")
        repository.manifests[digest] = (media_type, body)
        if reference.startswith("sha256:"):
            if reference != digest:
                raise InvalidArgument(f"manifest pushed as {reference} has digest {digest}")
        else:
            repository.tags[reference] = digest
        return digest

    def add(
        self,
        name: str,
        layers: list[Layer],
        config: dict[str, object] | None = None,
        salt: str = "",
        config_layers: list[Layer] | None = None,
    ) -> StoredImage:
        """Push an OCI image under `name` (a tag reference; docker.io/library for a short name). The config
        names the diff ids of `config_layers` (default: `layers`)."""
        reference = parse(name).for_pull()
        host = reference.registry
        raw_config = image_config(layers if config_layers is None else config_layers, config, salt)
        self.add_blob(host, raw_config)
        for layer in layers:
            self.add_blob(host, layer.blob)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _sha256(raw_config), "size": len(raw_config)},
                "layers": [
                    {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
                    for d in (layer.descriptor for layer in layers)
                ],
            }
        ).encode()
        self.add_manifest(reference.name, OCI_MANIFEST, manifest, reference.tag or "latest")
        return StoredImage(raw_config, layers, manifest)

    def corrupt_blob(self, host: str, digest: str, data: bytes) -> None:
        """Serve `data` under `digest` (a registry or mirror gone bad)."""
        self._host(host).blobs[digest] = data

    def set_credentials(self, host: str, username: str, password: str) -> None:
        self._host(host).credentials = (username, password)

    def set_reachable(self, host: str, reachable: bool) -> None:
        self._host(host).reachable = reachable

    # -- the port -------------------------------------------------------------------------------------------

    def resolve(self, source: PullSource, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        with self._lock:
            self.resolves += 1
        return replace(self._resolve_at(source.reference, auth, platform), insecure=source.insecure)

    def open_blob(
        self,
        image: ResolvedImage,
        blob: Descriptor,
        auth: RegistryAuth | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[bytes]:
        check_digest(blob.digest)
        source = parse(image.source)
        try:
            host = self._reachable_host(source.registry, auth)
        except PycrioError as failure:
            raise type(failure)(f"fetching blob {blob.digest}: {source.name}: {failure}") from None
        data = host.blobs.get(blob.digest)
        if data is None:
            raise NotFound(f"fetching blob {blob.digest}: {source.name}: blob unknown")
        with self._lock:
            self.blob_downloads[blob.digest] = self.blob_downloads.get(blob.digest, 0) + 1
        return self._stream(data, blob, cancel)

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        if self.extension is None:
            return None  # like distribution: no signature API
        return list(self.extension.get(image.index_digest or image.manifest_digest, []))

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        source = parse(image.source)
        try:
            host = self._reachable_host(source.registry, auth)
        except PycrioError as failure:
            raise type(failure)(f"fetching sigstore signatures of {source.name}: {failure}") from None
        manifest_digest = image.index_digest or image.manifest_digest
        if manifest_digest in self.attachments:
            return list(self.attachments[manifest_digest])
        repository = host.repositories.get(source.path, _Repository())
        digest = repository.tags.get(manifest_digest.replace(":", "-") + ".sig")
        if digest is None:
            return []
        _, body = repository.manifests[digest]
        signatures = []
        for layer in json.loads(body).get("layers", []):
            data = host.blobs[layer["digest"]]
            signatures.append(SigstoreSignature(layer["mediaType"], data, dict(layer.get("annotations", {}))))
        return signatures

    def _stream(self, data: bytes, blob: Descriptor, cancel: Cancellation | None) -> Iterator[bytes]:
        with self._lock:
            self.streaming += 1
            self.most_streaming = max(self.most_streaming, self.streaming)
        try:
            yield from self._chunks(data, blob, cancel or Cancellation())
        finally:
            with self._lock:
                self.streaming -= 1

    def _chunks(self, data: bytes, blob: Descriptor, cancel: Cancellation) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        sent = 0
        for start in range(0, len(data), self.chunk_size):
            cancel.check()
            chunk = data[start : start + self.chunk_size]
            sent += len(chunk)
            if sent > blob.size:
                raise Internal(f"blob {blob.digest}: more than the {blob.size} bytes its descriptor says")
            hasher.update(chunk)
            yield chunk
            gate = self.gates.get(blob.digest)
            if gate is not None and start == 0:
                gate.reached.set()
                # Held like a read blocked on a socket: only the release or a cancellation ends the wait.
                # (Polled, 30 s at most: a test sets `release` itself, so no single event says "go on".)
                woken = threading.Event()
                with cancel.hook(woken.set):
                    for _ in range(3000):
                        if gate.release.wait(0.01) or woken.is_set():
                            break
                if not gate.release.is_set():
                    gate.cancelled.set()
        cancel.check()
        if sent != blob.size:
            raise Internal(f"blob {blob.digest}: got {sent} bytes, its descriptor says {blob.size}")
        if "sha256:" + hasher.hexdigest() != blob.digest:
            raise Internal(f"blob {blob.digest}: content has digest sha256:{hasher.hexdigest()}")

    # -- internals ------------------------------------------------------------------------------------------

    def _reachable_host(self, name: str, auth: RegistryAuth | None) -> _Host:
        with self._lock:
            host = self._hosts.get(name)
        if host is None or not host.reachable:
            raise Unavailable(f"{name}: connection refused")
        if host.credentials is not None:
            given = (auth.username, auth.password) if auth else ("", "")
            if given != host.credentials:
                raise InvalidArgument("authentication refused: 401 unauthorized: authentication required")
        return host

    def _resolve_at(
        self, reference: ImageReference, auth: RegistryAuth | None, platform: Platform
    ) -> ResolvedImage:
        host = self._reachable_host(reference.registry, auth)
        repository = host.repositories.get(reference.path)
        if repository is None:
            raise NotFound(f"manifest {reference}: 404 name unknown: repository name not known")
        digest = reference.digest or repository.tags.get(reference.tag, "")
        media_type, body = self._manifest(repository, reference, digest)
        parsed = parse_manifest(body, media_type)
        index_digest = ""
        if isinstance(parsed, ImageIndex):
            try:
                chosen = choose_platform(parsed, platform)
            except LookupError as err:
                raise NotFound(str(err)) from None
            index_digest, digest = digest, chosen.digest
            media_type, body = self._manifest(repository, reference, digest)
            parsed = parse_manifest(body, media_type)
            if isinstance(parsed, ImageIndex):
                raise Internal("index points at another index")
        for layer in parsed.layers:
            try:
                layer_compression(layer.media_type)
            except InvalidArgument as err:
                raise Internal(f"manifest {digest}: {err}") from None
        config = host.blobs.get(parsed.config.digest)
        if config is None or _sha256(config) != parsed.config.digest or len(config) != parsed.config.size:
            raise Internal(f"config {parsed.config.digest} missing or corrupt")
        return ResolvedImage(
            name=reference.name,
            tag=reference.tag,
            manifest_digest=digest,
            manifest_media_type=media_type,
            manifest=body,
            config_digest=parsed.config.digest,
            config=config,
            layers=list(parsed.layers),
            source=reference.name,
            index_digest=index_digest,
        )

    def _manifest(self, repository: _Repository, reference: ImageReference, digest: str) -> tuple[str, bytes]:
        stored = repository.manifests.get(digest) if digest else None
        if stored is None:
            raise NotFound(f"manifest {reference}: 404 manifest unknown")
        media_type, body = stored
        if _sha256(body) != digest:
            raise Internal(f"manifest {digest}: content does not match")
        return media_type_of(body, media_type), body
