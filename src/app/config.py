"""pycrio's configuration: defaults, then `/etc/pycrio/pycrio.toml`, then drop-ins, then flags.

Every key is typed; an unknown key or a value of the wrong type stops start-up with the dotted key name,
because a typo silently ignored on a node is worse than a daemon that refuses to start.
"""

import dataclasses
import re
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

DEFAULT_CONFIG_FILE = Path("/etc/pycrio/pycrio.toml")
_T = TypeVar("_T")

CgroupDriver = Literal["cgroupfs", "systemd"]
LogFormat = Literal["console", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]

MiB = 1024 * 1024
DAY = 24 * 3600.0


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key, the value and what is allowed."""


def setting(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    check: Callable[[Any], bool] | None = None,
    allowed: str = "",
    unit: str = "",
    live: bool = False,
) -> Any:
    """A config key: its default, a one-line description (`pycrio config`, docs/configuration.md) and the
    values it accepts. `live` keys are re-read on SIGHUP (app/reload.py)."""
    metadata = {"doc": doc, "minimum": minimum, "maximum": maximum, "check": check, "allowed": allowed}
    metadata.update(live=live, unit=unit)
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_octal_mode(text: str) -> bool:
    return bool(re.fullmatch(r"0?[0-7]{3}", text))


def _is_unix_address(text: str) -> bool:
    return text.startswith("unix:///")


def _is_absolute_or_empty(text: str) -> bool:
    return text == "" or text.startswith("/")


def _is_log_size_max(size: int) -> bool:
    return size < 0 or 8192 <= size < 2**63


def _is_conmon_cgroup(text: str) -> bool:
    return text == "pod" or (text.endswith(".slice") and text != ".slice" and "/" not in text)


def _is_absolute(text: str) -> bool:
    return text.startswith("/")


_ABSOLUTE: dict[str, Any] = {"check": _is_absolute, "allowed": "an absolute path"}
_ABSOLUTE_OR_EMPTY: dict[str, Any] = {"check": _is_absolute_or_empty, "allowed": "an absolute path or empty"}
_PORT: dict[str, Any] = {"minimum": 0, "maximum": 65535}
_SECONDS: dict[str, Any] = {"minimum": 0.0, "maximum": DAY, "unit": "seconds"}


@dataclass
class LogConfig:
    level: LogLevel = setting("info", "lowest level logged, for pycrio and the libraries alike", live=True)
    format: LogFormat = setting("console", "console (one line of key=value) or json (one object a line)")


@dataclass
class GrpcConfig:
    listen: str = setting(
        "unix:///run/pycrio/pycrio.sock", "the CRI endpoint", check=_is_unix_address, allowed="unix:///path"
    )
    socket_mode: str = setting(
        "0660", "permission bits of the socket file", check=_is_octal_mode, allowed="octal bits like 0660"
    )
    max_workers: int = setting(
        64,
        "threads for unary RPCs that may wait (Create*, Stop*, PullImage, ExecSync...); never streams",
        minimum=1,
        maximum=4096,
    )
    max_poll_workers: int = setting(
        16,
        "threads of their own for the kubelet's polls (Version, Status, List*, *Status): waiting calls never "
        "take them",
        minimum=1,
        maximum=1024,
    )
    max_streams: int = setting(
        64,
        "server-streaming RPCs open at once (each on a thread); more are refused with RESOURCE_EXHAUSTED",
        minimum=1,
        maximum=4096,
    )
    max_connections: int = setting(
        512,
        "client connections to the CRI socket at once; more are closed as they arrive (each holds a file)",
        minimum=1,
        maximum=65536,
    )
    shutdown_grace: float = setting(10.0, "seconds in-flight RPCs get to finish after SIGTERM", **_SECONDS)


@dataclass
class RuntimeHandler:
    """An OCI runtime that a CRI runtime_handler name selects."""

    path: str = setting("/usr/sbin/runc", "the OCI runtime binary", **_ABSOLUTE)
    root: str = setting(
        "",
        "the OCI runtime's own state dir (its --root); empty: runtime.run_dir/NAME",
        **_ABSOLUTE_OR_EMPTY,
    )
    type: Literal["oci"] = setting("oci", "the only type; kept so configs from cri-o read the same")


def _default_runtimes() -> dict[str, RuntimeHandler]:
    return {
        "runc": RuntimeHandler(path="/usr/sbin/runc"),
        "crun": RuntimeHandler(path="/usr/bin/crun"),
    }


@dataclass
class RuntimeConfig:
    root: str = setting("/var/lib/pycrio", "persistent state (images, layers, pods, containers)", **_ABSOLUTE)
    run_dir: str = setting("/run/pycrio", "runtime files (sockets, namespaces, pid files)", **_ABSOLUTE)
    cgroup_driver: CgroupDriver = setting("cgroupfs", "how pod and container cgroups are made")
    default_runtime: str = setting("runc", "the handler used when the kubelet names none")
    runtimes: dict[str, RuntimeHandler] = setting(
        doc="OCI runtimes by handler name: path, root, type", factory=_default_runtimes
    )
    conmon: str = setting("/usr/bin/conmon", "the container monitor binary", **_ABSOLUTE)
    conmon_cgroup: str = setting(
        "pod",
        "where each conmon goes once it made its container (cri-o's conmon_cgroup)",
        check=_is_conmon_cgroup,
        allowed='"pod" (a cgroup or scope under the pod\'s) or, systemd driver only, a slice name such as '
        '"system.slice"',
    )
    infra_init: str = setting(
        "/usr/bin/catatonit", "the init process that holds a pod's namespaces", **_ABSOLUTE
    )
    ns_helper: str = setting(
        "",
        "the compiled helper that pins pod namespaces and starts the infra init; empty: the one "
        "`make helpers` builds beside pycrio's sources",
        **_ABSOLUTE_OR_EMPTY,
    )
    subprocess_timeout: float = setting(
        120.0,
        "how long a call to runc, conmon or a CNI plugin may take before it is killed",
        minimum=1.0,
        maximum=DAY,
        unit="seconds",
    )
    hooks_dir: list[str] = setting(
        doc="OCI hook dirs (cri-o's hooks_dir); a later dir's file replaces an earlier one's by name",
        factory=lambda: ["/usr/share/containers/oci/hooks.d"],
    )
    cdi_spec_dirs: list[str] = setting(
        doc="CDI spec dirs (cri-o's cdi_spec_dirs); a device defined in a later dir wins",
        factory=lambda: ["/etc/cdi", "/var/run/cdi"],
    )
    log_size_max: int = setting(
        -1,
        "bytes a container's log may reach before conmon starts it afresh (cri-o's log_size_max)",
        check=_is_log_size_max,
        allowed="negative (no limit), or 8192 (conmon's read buffer) to 2^63-1 bytes",
    )
    enable_criu_support: bool = setting(
        True,
        "checkpoint/restore with CRIU (cri-o's key); used where the runtime and `criu check` allow it",
    )


@dataclass
class ImageSettings:
    registries_conf: str = setting(
        "/etc/containers/registries.conf", "containers-registries.conf(5), read at every pull", **_ABSOLUTE
    )
    registries_conf_dir: str = setting(
        "/etc/containers/registries.conf.d", "drop-ins of registries.conf", **_ABSOLUTE
    )
    signature_policy: str = setting(
        "/etc/containers/policy.json",
        "containers-policy.json(5), read at every pull (docs/images.md, Trust)",
        **_ABSOLUTE,
    )
    signature_policy_dir: str = setting(
        "/etc/pycrio/policies",
        "dir of NAMESPACE.json policies, each used instead of signature_policy in its namespace; empty: none",
        **_ABSOLUTE_OR_EMPTY,
    )
    registries_d: str = setting(
        "/etc/containers/registries.d",
        "containers-registries.d(5): where signatures are found (lookaside, sigstore attachments)",
        **_ABSOLUTE,
    )
    pinned_images: list[str] = setting(
        doc="image names or globs reported as pinned (never garbage-collected by the kubelet)",
        factory=list,
        live=True,
    )
    pull_progress_timeout: float = setting(
        60.0, "seconds without a received byte before a pull is cancelled; 0: never", **_SECONDS
    )
    pull_deadline: float = setting(
        3600.0,
        "seconds one pull may take in all however steadily bytes arrive (stops a trickling registry)",
        minimum=1.0,
        maximum=7 * DAY,
        unit="seconds",
    )
    global_auth_file: str = setting(
        "",
        "containers-auth.json(5) used when a pull carries no credentials; empty: none",
        **_ABSOLUTE_OR_EMPTY,
    )
    namespaced_auth_dir: str = setting(
        "/etc/pycrio/auth",
        "dir of NAMESPACE.json auth files for pods of that namespace, before global_auth_file",
        **_ABSOLUTE_OR_EMPTY,
    )
    pull_progress_interval: float = setting(
        10.0, "seconds between a running pull's bytes-done/total/rate log lines; 0: none", **_SECONDS
    )
    max_concurrent_layers: int = setting(
        3,
        "layers of one pull downloaded and unpacked at once (containerd's max_concurrent_downloads)",
        minimum=1,
        maximum=32,
    )
    # What a registry or an image may make pycrio read, store or wait for (docs/security.md, "Limits").
    max_manifest_bytes: int = setting(
        4 * MiB, "a manifest or an index", minimum=1, maximum=1 << 30, unit="bytes"
    )
    max_config_bytes: int = setting(8 * MiB, "an image config", minimum=1, maximum=1 << 30, unit="bytes")
    max_token_bytes: int = setting(MiB, "a token server's answer", minimum=1, maximum=1 << 30, unit="bytes")
    max_error_body_bytes: int = setting(
        64 * 1024, "what is read of a registry's error body", minimum=1, maximum=1 << 30, unit="bytes"
    )
    registry_request_deadline: float = setting(
        120.0,
        "seconds one request for a manifest, index, config or token may take in all, however steady",
        minimum=0.001,
        maximum=DAY,
        unit="seconds",
    )
    max_layer_bytes: int = setting(
        8 * 1024**3, "what one layer may expand to on disk", minimum=1, maximum=1 << 50, unit="bytes"
    )
    max_layer_ratio: int = setting(
        100,
        "times its compressed size a layer may expand to (checked past 64 MiB)",
        minimum=1,
        maximum=1 << 20,
    )
    max_image_bytes: int = setting(
        32 * 1024**3,
        "what all layers of one pulled image may take together",
        minimum=1,
        maximum=1 << 50,
        unit="bytes",
    )
    min_free_bytes: int = setting(
        256 * MiB,
        "free space the image store keeps: an unpack that would go below stops cleanly",
        minimum=0,
        maximum=1 << 50,
        unit="bytes",
    )
    min_free_inodes: int = setting(
        64 * 1024,
        "free inodes the image store keeps (on file systems that count them): an unpack stops cleanly",
        minimum=0,
        maximum=1 << 40,
    )
    max_layer_entries: int = setting(
        1_000_000,
        "tar entries (files, directories, links, whiteouts) one layer may hold",
        minimum=1,
        maximum=1 << 32,
    )


@dataclass
class NetworkConfig:
    cni_conf_dir: str = setting(
        "/etc/cni/net.d", "CNI network configs; the lexically first one is used", **_ABSOLUTE
    )
    cni_plugin_dirs: list[str] = setting(
        doc="where CNI plugin binaries are looked up", factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"]
    )


@dataclass
class PodsConfig:
    default_cgroup_parent: str = setting(
        "/pycrio", "cgroup parent of pods whose config names none (cgroupfs path; systemd: a slice name)"
    )
    shm_size: int = setting(
        64 * MiB,
        "a pod's /dev/shm tmpfs (cri-o's default: 64 MiB)",
        minimum=4096,
        maximum=1 << 40,
        unit="bytes",
    )
    network_teardown_timeout: float = setting(
        30.0, "seconds CNI DEL is retried on stop/remove before it is given up (logged)", **_SECONDS
    )


@dataclass
class StreamingConfig:
    address: str = setting("127.0.0.1", "address of the exec/attach/port-forward server")
    port: int = setting(0, "its port; 0 picks a free one", **_PORT)
    tls_cert: str = setting(
        "", "PEM certificate of the streaming server; set with tls_key", **_ABSOLUTE_OR_EMPTY
    )
    tls_key: str = setting("", "PEM key of the streaming server; set with tls_cert", **_ABSOLUTE_OR_EMPTY)
    token_ttl: float = setting(
        60.0,
        "seconds an Exec/Attach/PortForward URL stays valid unused",
        minimum=1.0,
        maximum=DAY,
        unit="seconds",
    )
    idle_timeout: float = setting(
        4 * 3600.0, "seconds an idle stream stays open", minimum=1.0, maximum=7 * DAY, unit="seconds"
    )
    max_connections: int = setting(
        256,
        "connections served at once (each holds a thread); more are answered 503 and closed",
        minimum=1,
        maximum=65536,
    )


@dataclass
class MetricsConfig:
    enabled: bool = setting(False, "serve Prometheus metrics")
    address: str = setting("127.0.0.1", "address of the metrics endpoint")
    port: int = setting(9090, "port of the metrics endpoint", minimum=1, maximum=65535)


@dataclass
class StatsConfig:
    period: float = setting(
        1.0,
        "seconds a stats sample (taken when a call asks) is reused by later calls; 0: every call samples",
        **_SECONDS,
    )
    disk_usage_period: float = setting(
        60.0, "seconds a container's writable-layer size is reused before it is walked again", **_SECONDS
    )
    events_queue_size: int = setting(
        1000,
        "events a GetContainerEvents client may fall behind before its events are dropped",
        minimum=1,
        maximum=1_000_000,
    )


def _is_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


@dataclass
class TracingConfig:
    enabled: bool = setting(False, "export OpenTelemetry spans (needs the pycrio[tracing] extra)")
    endpoint: str = setting(
        "127.0.0.1:4317", "the OTLP/gRPC collector (plain text)", check=_is_host_port, allowed="host:port"
    )
    sampling_rate: float = setting(1.0, "share of traces kept", minimum=0.0, maximum=1.0)


@dataclass
class NriConfig:
    enable: bool = setting(False, "be the runtime side of NRI (cri-o's enable_nri; docs/nri.md)")
    socket_path: str = setting(
        "/var/run/nri/nri.sock", "the unix socket NRI plugins connect to (cri-o's nri_listen)", **_ABSOLUTE
    )
    plugin_dir: str = setting(
        "/opt/nri/plugins",
        "NN-name executables started with the daemon as NRI plugins (cri-o's nri_plugin_dir); empty: none",
        **_ABSOLUTE_OR_EMPTY,
    )
    plugin_config_dir: str = setting(
        "/etc/nri/conf.d",
        "NN-name.conf or name.conf: a plugin's configuration (cri-o's nri_plugin_config_dir); empty: none",
        **_ABSOLUTE_OR_EMPTY,
    )
    plugin_registration_timeout: float = setting(
        5.0, "seconds a connected plugin has to register", minimum=0.01, maximum=3600.0, unit="seconds"
    )
    plugin_request_timeout: float = setting(
        2.0,
        "seconds a plugin has for one event before it is disconnected",
        minimum=0.01,
        maximum=3600.0,
        unit="seconds",
    )


@dataclass
class Config:
    log: LogConfig = setting(doc="logging", factory=LogConfig)
    grpc: GrpcConfig = setting(doc="the CRI gRPC server", factory=GrpcConfig)
    runtime: RuntimeConfig = setting(doc="OCI runtimes, monitor, state", factory=RuntimeConfig)
    image: ImageSettings = setting(doc="image pulls and storage", factory=ImageSettings)
    network: NetworkConfig = setting(doc="CNI", factory=NetworkConfig)
    pods: PodsConfig = setting(doc="pod sandboxes", factory=PodsConfig)
    streaming: StreamingConfig = setting(doc="the streaming server", factory=StreamingConfig)
    metrics: MetricsConfig = setting(doc="the Prometheus endpoint", factory=MetricsConfig)
    stats: StatsConfig = setting(doc="container and pod stats, container events", factory=StatsConfig)
    tracing: TracingConfig = setting(doc="OpenTelemetry tracing (off by default)", factory=TracingConfig)
    nri: NriConfig = setting(doc="NRI plugins (Node Resource Interface; off by default)", factory=NriConfig)

    def validate(self) -> "Config":
        """Checks that span several keys (each key's own range is checked as it is read)."""
        if self.runtime.default_runtime not in self.runtime.runtimes:
            raise ConfigError(
                f"runtime.default_runtime: {self.runtime.default_runtime!r} is not allowed; "
                f"allowed: one of runtime.runtimes ({', '.join(sorted(self.runtime.runtimes))})"
            )
        if bool(self.streaming.tls_cert) != bool(self.streaming.tls_key):
            raise ConfigError("streaming.tls_cert and streaming.tls_key: set both or neither")
        if self.runtime.conmon_cgroup != "pod" and self.runtime.cgroup_driver != "systemd":
            raise ConfigError("runtime.conmon_cgroup: a slice applies to the systemd cgroup driver only")
        return self

    @property
    def socket_path(self) -> Path:
        return Path(self.grpc.listen.removeprefix("unix://"))


def load(
    config_file: Path | None = DEFAULT_CONFIG_FILE,
    drop_in_dir: Path | None = None,
    overrides: Iterable[str] = (),
    *,
    explicit: bool = False,
) -> Config:
    """The effective config: defaults < file < drop-ins (lexical order) < `key=value` overrides.

    The default file may be absent; an `explicit` one (`--config`) must exist, as in cri-o: a typo in its
    name must not start a node on defaults. So must a named `drop_in_dir` (`--config-dir`); the default one,
    `<config_file>.d`, may be absent.
    """
    merged: dict[str, Any] = {}
    if config_file is not None and explicit and not config_file.is_file():
        raise ConfigError(f"--config: {str(config_file)!r} does not exist; allowed: an existing TOML file")
    if config_file is not None and config_file.exists():
        _deep_merge(merged, _read_toml(config_file))
    if drop_in_dir is not None and not drop_in_dir.is_dir():
        raise ConfigError(
            f"--config-dir: {str(drop_in_dir)!r} does not exist; allowed: an existing directory"
        )
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
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}", values[name])
        _check_range(fields[name], values[name], f"{prefix}{name}")
    return cls(**values)


def allowed_values(spec: dataclasses.Field[Any], hint: Any = None) -> str:
    """What a key accepts, in words (error messages and docs/configuration.md)."""
    meta = spec.metadata
    if meta.get("allowed"):
        return str(meta["allowed"])
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    low, high, unit = meta.get("minimum"), meta.get("maximum"), meta.get("unit")
    if low is None or high is None:
        return ""
    return f"{_number(low)} to {_number(high)}" + (f" {unit}" if unit else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_range(spec: dataclasses.Field[Any], value: Any, key: str) -> None:
    meta = spec.metadata
    low, high, check = meta.get("minimum"), meta.get("maximum"), meta.get("check")
    bad = (low is not None and value < low) or (high is not None and value > high)
    if bad or (check is not None and not check(value)):
        raise ConfigError(f"{key}: {value!r} is not allowed; allowed: {allowed_values(spec)}")


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
_TYPE_WORDS.update({list: "a list", dict: "a table"})


def _coerce(hint: Any, value: Any, key: str, default: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a table")
        return _build(typing.cast(type[Any], hint), value, f"{key}.", default)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{key}: {value!r} is not allowed; allowed: one of {', '.join(map(str, choices))}"
            )
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
            raise ConfigError(
                f"{key}: {value!r} is not allowed; "
                f"allowed: {_TYPE_WORDS[hint]}, not {_TYPE_WORDS.get(type(value), type(value).__name__)}"
            )
        return value
    raise ConfigError(f"{key}: unsupported config type {hint}")
