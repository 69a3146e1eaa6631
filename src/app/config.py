"""pycrio's configuration: defaults, then `/etc/pycrio/pycrio.toml`, then drop-ins, then flags.

Every key is typed; an unknown key or a value of the wrong type stops start-up with the dotted key name,
because a typo silently ignored on a node is worse than a daemon that refuses to start.
"""

import dataclasses
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

DEFAULT_CONFIG_FILE = Path("/etc/pycrio/pycrio.toml")
_T = TypeVar("_T")

CgroupDriver = Literal["cgroupfs", "systemd"]
LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


@dataclass
class LogConfig:
    level: LogLevel = "info"
    format: LogFormat = "console"


@dataclass
class GrpcConfig:
    listen: str = "unix:///run/pycrio/pycrio.sock"
    # Octal permission bits of the socket file.
    socket_mode: str = "0660"
    # Threads kept for unary RPCs (Version, List*, Create*...): streams never take these.
    max_workers: int = 64
    # Server-streaming RPCs (GetContainerEvents, Stream*) open at once, each on a thread of its own; more
    # are refused with RESOURCE_EXHAUSTED.
    max_streams: int = 64
    # Seconds in-flight RPCs may take to finish after SIGTERM.
    shutdown_grace: float = 10.0


@dataclass
class RuntimeHandler:
    """An OCI runtime that a CRI runtime_handler name selects."""

    path: str = "/usr/sbin/runc"
    # The OCI runtime's own state dir (its --root); empty means <runtime.run_dir>/<handler name>.
    root: str = ""
    # "oci" is the only type; kept as a key so configs from cri-o read the same.
    type: Literal["oci"] = "oci"


def _default_runtimes() -> dict[str, RuntimeHandler]:
    return {
        "runc": RuntimeHandler(path="/usr/sbin/runc"),
        "crun": RuntimeHandler(path="/usr/bin/crun"),
    }


@dataclass
class RuntimeConfig:
    root: str = "/var/lib/pycrio"
    run_dir: str = "/run/pycrio"
    cgroup_driver: CgroupDriver = "cgroupfs"
    default_runtime: str = "runc"
    runtimes: dict[str, RuntimeHandler] = field(default_factory=_default_runtimes)
    conmon: str = "/usr/bin/conmon"
    infra_init: str = "/usr/bin/catatonit"
    # Seconds a call to runc, conmon or a CNI plugin may take before it is killed.
    subprocess_timeout: float = 120.0
    # OCI hook directories (cri-o's hooks_dir); a later directory's file replaces an earlier one's by name.
    hooks_dir: list[str] = field(default_factory=lambda: ["/usr/share/containers/oci/hooks.d"])
    # CDI spec directories (cri-o's cdi_spec_dirs); a device defined in a later directory wins.
    cdi_spec_dirs: list[str] = field(default_factory=lambda: ["/etc/cdi", "/var/run/cdi"])
    # Bytes a container's log may reach before conmon starts it afresh; negative = no limit, else >= 8192.
    log_size_max: int = -1


@dataclass
class ImageConfig:
    registries_conf: str = "/etc/containers/registries.conf"
    registries_conf_dir: str = "/etc/containers/registries.conf.d"
    signature_policy: str = "/etc/containers/policy.json"
    # <dir>/<pod namespace>.json, when it exists, decides instead of signature_policy ("" disables).
    signature_policy_dir: str = "/etc/pycrio/policies"
    # containers-registries.d(5): where signatures are found (lookaside, sigstore attachments).
    registries_d: str = "/etc/containers/registries.d"
    # Image names or globs reported as pinned, never garbage-collected by the kubelet.
    pinned_images: list[str] = field(default_factory=list)
    # Seconds without a received byte after which a pull is cancelled.
    pull_progress_timeout: float = 60.0
    # What a registry or an image may make pycrio read, store or wait for (docs/security.md, "Limits").
    # Bytes of a manifest or an index; of an image config; of a token server's answer; of an error body
    # (the rest of an error body is not read).
    max_manifest_bytes: int = 4 * 1024 * 1024
    max_config_bytes: int = 8 * 1024 * 1024
    max_token_bytes: int = 1024 * 1024
    max_error_body_bytes: int = 64 * 1024
    # Seconds one registry request for a manifest, index, config or token may take in all, however
    # steadily the bytes come (the stall timeout alone lets a byte every few seconds through).
    registry_request_deadline: float = 120.0
    # Bytes one layer may expand to on disk, and how many times its compressed size (checked once it
    # passes 64 MiB); bytes all layers of one pulled image may take together.
    max_layer_bytes: int = 8 * 1024**3
    max_layer_ratio: int = 100
    max_image_bytes: int = 32 * 1024**3
    # Bytes the image store's file system keeps free: an unpack that would go below stops cleanly.
    min_free_bytes: int = 256 * 1024 * 1024


@dataclass
class NetworkConfig:
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_plugin_dirs: list[str] = field(default_factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"])


@dataclass
class PodsConfig:
    # The cgroup parent of pods whose config names none (cgroupfs path; systemd: a slice name).
    default_cgroup_parent: str = "/pycrio"
    # Bytes of a pod's /dev/shm tmpfs (cri-o's default: 64 MiB).
    shm_size: int = 64 * 1024 * 1024
    # Seconds CNI DEL is retried on stop/remove before it is given up (logged).
    network_teardown_timeout: float = 30.0


@dataclass
class StreamingConfig:
    address: str = "127.0.0.1"
    # 0 picks a free port.
    port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    # Seconds an Exec/Attach/PortForward URL stays valid unused.
    token_ttl: float = 60.0
    # Seconds an idle stream stays open.
    idle_timeout: float = 4 * 3600.0
    # Connections served at once (each holds a thread); more are answered 503 and closed.
    max_connections: int = 256


@dataclass
class MetricsConfig:
    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 9090


@dataclass
class StatsConfig:
    # Seconds between stats sweeps; List*Stats answer from the last sweep. 0: sample on every call.
    period: float = 10.0
    # Seconds a container's writable-layer size is reused before its directory is walked again.
    disk_usage_period: float = 60.0
    # Events a GetContainerEvents client may fall behind before further events are dropped for it.
    events_queue_size: int = 1000


@dataclass
class Config:
    log: LogConfig = field(default_factory=LogConfig)
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    pods: PodsConfig = field(default_factory=PodsConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)

    def validate(self) -> "Config":
        """Checks that span several keys."""
        if self.runtime.default_runtime not in self.runtime.runtimes:
            raise ConfigError(
                f"runtime.default_runtime: {self.runtime.default_runtime!r} is not one of runtime.runtimes "
                f"({', '.join(sorted(self.runtime.runtimes))})"
            )
        if not (self.grpc.listen.startswith("unix://") and len(self.grpc.listen) > len("unix://")):
            raise ConfigError(f"grpc.listen: {self.grpc.listen!r} is not a unix:// address")
        try:
            if not 0 <= int(self.grpc.socket_mode, 8) <= 0o777:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"grpc.socket_mode: {self.grpc.socket_mode!r} is not octal permission bits"
            ) from None
        if bool(self.streaming.tls_cert) != bool(self.streaming.tls_key):
            raise ConfigError("streaming.tls_cert and streaming.tls_key: set both or neither")
        for key, value in (
            ("grpc.max_workers", self.grpc.max_workers),
            ("grpc.max_streams", self.grpc.max_streams),
            ("metrics.port", self.metrics.port),
            ("stats.events_queue_size", self.stats.events_queue_size),
            ("streaming.max_connections", self.streaming.max_connections),
            ("image.max_manifest_bytes", self.image.max_manifest_bytes),
            ("image.max_config_bytes", self.image.max_config_bytes),
            ("image.max_token_bytes", self.image.max_token_bytes),
            ("image.max_error_body_bytes", self.image.max_error_body_bytes),
            ("image.registry_request_deadline", self.image.registry_request_deadline),
            ("image.max_layer_bytes", self.image.max_layer_bytes),
            ("image.max_layer_ratio", self.image.max_layer_ratio),
            ("image.max_image_bytes", self.image.max_image_bytes),
        ):
            if value <= 0:
                raise ConfigError(f"{key}: must be positive, got {value}")
        for key, seconds in (
            ("stats.period", self.stats.period),
            ("stats.disk_usage_period", self.stats.disk_usage_period),
            ("image.min_free_bytes", self.image.min_free_bytes),
        ):
            if seconds < 0:
                raise ConfigError(f"{key}: must not be negative, got {seconds}")
        if 0 <= self.runtime.log_size_max < 8192 or self.runtime.log_size_max >= 2**63:
            raise ConfigError(
                f"runtime.log_size_max: {self.runtime.log_size_max} must be negative (no limit) or 8192 "
                "(conmon's read buffer) to 2^63-1"
            )
        if not 0 <= self.streaming.port <= 65535:
            raise ConfigError(f"streaming.port: {self.streaming.port} is not a port number")
        return self

    @property
    def socket_path(self) -> Path:
        return Path(self.grpc.listen.removeprefix("unix://"))


def load(
    config_file: Path | None = DEFAULT_CONFIG_FILE,
    drop_in_dir: Path | None = None,
    overrides: Iterable[str] = (),
) -> Config:
    """The effective config: defaults < file < drop-ins (lexical order) < `key=value` overrides."""
    merged: dict[str, Any] = {}
    if config_file is not None and config_file.exists():
        _deep_merge(merged, _read_toml(config_file))
    if drop_in_dir is None and config_file is not None:
        drop_in_dir = config_file.with_name(config_file.name + ".d")
    if drop_in_dir is not None and drop_in_dir.is_dir():
        for drop_in in sorted(drop_in_dir.glob("*.toml")):
            _deep_merge(merged, _read_toml(drop_in))
    for override in overrides:
        _deep_merge(merged, _parse_override(override))
    return _build(Config, merged, "").validate()


def to_toml_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from err
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from err


def _parse_override(text: str) -> dict[str, Any]:
    """`runtime.cgroup_driver=systemd` (value in TOML syntax; bare words are strings)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    nested: dict[str, Any] = {}
    cursor = nested
    *parents, leaf = key.split(".")
    for part in parents:
        cursor = cursor.setdefault(part, {})
    cursor[leaf] = value
    return nested


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type[_T], raw: Mapping[str, Any], prefix: str, default: _T | None = None) -> _T:
    """An instance of a config dataclass from a TOML table; absent keys keep `default`'s values."""
    base = default if default is not None else cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key")
    values = {name: getattr(base, name) for name in known}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}", values[name])
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, default: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table")
        return _build(typing.cast(type[Any], hint), value, f"{key}.", default)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        return [_coerce(item, v, f"{key}[{i}]", None) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table")
        merged = dict(default or {})
        for name, entry in value.items():
            merged[name] = _coerce(item, entry, f"{key}.{name}", merged.get(name))
        return merged
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        if type(value) is not hint:
            raise ConfigError(f"{key}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {hint}")
