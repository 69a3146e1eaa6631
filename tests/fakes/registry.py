"""An in-memory Registry: images are added by tests, and it checks digests the way the real adapter does.

Registries are keyed by host; short names go through the same unqualified-search rules (default docker.io).
`pusher(host)` gives the same push interface as a real test registry, so fixture builders work on both.
Tests can make a host unreachable, block it, require credentials, or corrupt a stored blob.
"""

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from domain.errors import FailedPrecondition, Internal, InvalidArgument, NotFound, PycrioError, Unavailable
from domain.image_reference import ImageReference, check_digest, parse
from domain.manifests import ImageIndex, choose_platform, layer_compression, media_type_of, parse_manifest
from domain.registries_conf import RegistriesConf, RegistryTable
from ports.registry import Descriptor, Platform, RegistryAuth, ResolvedImage
from ports.signatures import SigstoreSignature


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


class _Failure(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


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
    def __init__(self, search_registries: list[str] | None = None, chunk_size: int = 64 << 10) -> None:
        self._hosts: dict[str, _Host] = {}
        self._search = tuple(search_registries) if search_registries else None
        self._blocked: set[str] = set()
        self._chunk_size = chunk_size
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

    def corrupt_blob(self, host: str, digest: str, data: bytes) -> None:
        """Serve `data` under `digest` (a registry or mirror gone bad)."""
        self._host(host).blobs[digest] = data

    def set_credentials(self, host: str, username: str, password: str) -> None:
        self._host(host).credentials = (username, password)

    def set_reachable(self, host: str, reachable: bool) -> None:
        self._host(host).reachable = reachable

    def block(self, host: str) -> None:
        self._blocked.add(host)

    # -- the port -------------------------------------------------------------------------------------------

    def resolve(self, image: str, auth: RegistryAuth | None, platform: Platform) -> ResolvedImage:
        conf = RegistriesConf(
            self._search, tuple(RegistryTable(h, h, blocked=True) for h in sorted(self._blocked))
        )
        failures: list[tuple[str, _Failure]] = []
        for candidate in conf.candidates(image):
            if candidate.blocked:
                failures.append((str(candidate.reference), _Failure("blocked", "registry is blocked")))
                continue
            try:
                return self._resolve_at(candidate.reference, auth, platform)
            except _Failure as failure:
                failures.append((str(candidate.reference), failure))
        raise _final_error(f"pulling image {image!r}", failures)

    def open_blob(self, image: ResolvedImage, blob: Descriptor, auth: RegistryAuth | None) -> Iterator[bytes]:
        check_digest(blob.digest)
        source = parse(image.source)
        try:
            host = self._reachable_host(source.registry, auth)
            data = host.blobs.get(blob.digest)
        except _Failure as failure:
            raise _final_error(f"fetching blob {blob.digest}", [(source.name, failure)]) from None
        if data is None:
            raise NotFound(f"fetching blob {blob.digest}: {source.name}: blob unknown")
        return self._stream(data, blob)

    def extension_signatures(self, image: ResolvedImage, auth: RegistryAuth | None) -> list[bytes] | None:
        return None  # like distribution: no signature API

    def signature_attachments(
        self, image: ResolvedImage, auth: RegistryAuth | None
    ) -> list[SigstoreSignature]:
        source = parse(image.source)
        try:
            host = self._reachable_host(source.registry, auth)
        except _Failure as failure:
            raise _final_error(
                f"fetching sigstore signatures of {source.name}", [(source.name, failure)]
            ) from None
        repository = host.repositories.get(source.path, _Repository())
        tag = (image.index_digest or image.manifest_digest).replace(":", "-") + ".sig"
        digest = repository.tags.get(tag)
        if digest is None:
            return []
        _, body = repository.manifests[digest]
        signatures = []
        for layer in json.loads(body).get("layers", []):
            data = host.blobs[layer["digest"]]
            signatures.append(SigstoreSignature(layer["mediaType"], data, dict(layer.get("annotations", {}))))
        return signatures

    def _stream(self, data: bytes, blob: Descriptor) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        sent = 0
        for start in range(0, len(data), self._chunk_size):
            chunk = data[start : start + self._chunk_size]
            sent += len(chunk)
            if sent > blob.size:
                raise Internal(f"blob {blob.digest}: more than the {blob.size} bytes its descriptor says")
            hasher.update(chunk)
            yield chunk
        if sent != blob.size:
            raise Internal(f"blob {blob.digest}: got {sent} bytes, its descriptor says {blob.size}")
        if "sha256:" + hasher.hexdigest() != blob.digest:
            raise Internal(f"blob {blob.digest}: content has digest sha256:{hasher.hexdigest()}")

    # -- internals ------------------------------------------------------------------------------------------

    def _reachable_host(self, name: str, auth: RegistryAuth | None) -> _Host:
        with self._lock:
            host = self._hosts.get(name)
        if host is None or not host.reachable:
            raise _Failure("unavailable", f"{name}: connection refused")
        if host.credentials is not None:
            given = (auth.username, auth.password) if auth else ("", "")
            if given != host.credentials:
                raise _Failure("auth", "authentication refused: 401 unauthorized: authentication required")
        return host

    def _resolve_at(
        self, reference: ImageReference, auth: RegistryAuth | None, platform: Platform
    ) -> ResolvedImage:
        host = self._reachable_host(reference.registry, auth)
        repository = host.repositories.get(reference.path)
        if repository is None:
            raise _Failure("not_found", f"manifest {reference}: 404 name unknown: repository name not known")
        digest = reference.digest or repository.tags.get(reference.tag, "")
        media_type, body = self._manifest(repository, reference, digest)
        parsed = parse_manifest(body, media_type)
        index_digest = ""
        if isinstance(parsed, ImageIndex):
            try:
                chosen = choose_platform(parsed, platform)
            except LookupError as err:
                raise _Failure("not_found", str(err)) from None
            index_digest, digest = digest, chosen.digest
            media_type, body = self._manifest(repository, reference, digest)
            parsed = parse_manifest(body, media_type)
            if isinstance(parsed, ImageIndex):
                raise _Failure("bad_content", "index points at another index")
        for layer in parsed.layers:
            layer_compression(layer.media_type)
        config = host.blobs.get(parsed.config.digest)
        if config is None or _sha256(config) != parsed.config.digest or len(config) != parsed.config.size:
            raise _Failure("bad_content", f"config {parsed.config.digest} missing or corrupt")
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
            raise _Failure("not_found", f"manifest {reference}: 404 manifest unknown")
        media_type, body = stored
        if _sha256(body) != digest:
            raise _Failure("bad_content", f"manifest {digest}: content does not match")
        return media_type_of(body, media_type), body


def _final_error(what: str, failures: list[tuple[str, _Failure]]) -> PycrioError:
    message = f"{what}: " + "; ".join(f"{where}: {failure.message}" for where, failure in failures)
    kinds = {failure.kind for _, failure in failures}
    if "unavailable" in kinds:
        return Unavailable(message)
    if "auth" in kinds:
        return InvalidArgument(message)
    if "bad_content" in kinds:
        return Internal(message)
    if "blocked" in kinds:
        return FailedPrecondition(message)
    return NotFound(message)
