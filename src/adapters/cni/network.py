"""The Network port over CNI plugins (spec 0.4.0 and 1.x), the way libcni runs a network config list.

ADD runs the plugins in order, each getting the previous result as prevResult; a failed ADD is undone by
DEL before the error is raised. The config list and the final result are kept in the attachment (libcni's
cache), so DEL and CHECK later use exactly what ADD used even if /etc/cni/net.d changed since.
"""

import copy
import time
from pathlib import Path
from typing import Any

import structlog

from adapters.cni.conf import CniConfigError, NetworkConfigList, find_plugin, load_network_config
from adapters.cni.invoke import PluginCall, invoke
from adapters.cni.result import parse_result
from adapters.tracing.spans import span
from domain.errors import DeadlineExceeded, Internal, Unavailable
from ports.network import NetworkAttachment, NetworkReadiness, PodNetworkRequest

NOT_READY_REASON = "NetworkPluginNotReady"
_MAX_BURST = 2**32 - 1
_log = structlog.get_logger("pycrio.cni")


class CniNetwork:
    def __init__(self, conf_dir: Path, plugin_dirs: list[Path], timeout: float = 120.0) -> None:
        self._conf_dir = conf_dir
        self._plugin_dirs = plugin_dirs
        self._timeout = timeout

    def readiness(self) -> NetworkReadiness:
        try:
            config = load_network_config(self._conf_dir)
        except CniConfigError as err:
            return NetworkReadiness(False, NOT_READY_REASON, f"Network plugin returns error: {err}")
        missing = [t for t in config.plugin_types if find_plugin(t, self._plugin_dirs) is None]
        if missing:
            dirs = ", ".join(map(str, self._plugin_dirs))
            return NetworkReadiness(
                False,
                NOT_READY_REASON,
                f"CNI plugin(s) {', '.join(missing)} of {config.source} not in {dirs}",
            )
        return NetworkReadiness(True)

    def _current(self) -> NetworkConfigList:
        try:
            return load_network_config(self._conf_dir)
        except CniConfigError as err:
            raise Unavailable(f"no usable CNI network configuration: {err}") from err

    def setup(self, request: PodNetworkRequest) -> NetworkAttachment:
        conf = self._current()
        raw = conf.raw
        previous: dict[str, Any] | None = None
        try:
            for plugin in raw["plugins"]:
                previous = self._call("ADD", raw, plugin, request, previous)
        except BaseException as err:
            _log.warning("CNI ADD failed, undoing it", id=request.sandbox_id, error=str(err))
            try:
                self._delete(raw, request, None)
            except Exception as undo_err:
                _log.warning(
                    "CNI DEL after a failed ADD failed too", id=request.sandbox_id, error=str(undo_err)
                )
            raise
        result = previous or {}
        addresses, interfaces = parse_result(result)
        if not addresses:
            self._delete(raw, request, result)
            raise Internal(f"CNI network {conf.name!r} gave the pod no IP address (result: {result})")
        return NetworkAttachment(
            network_name=conf.name,
            addresses=addresses,
            interfaces=interfaces,
            undo={"config": raw, "result": result},
        )

    def check(self, request: PodNetworkRequest, attachment: NetworkAttachment) -> None:
        raw = attachment.undo.get("config") or self._current().raw
        if not _supports_check(str(raw.get("cniVersion", ""))):
            return
        for plugin in raw["plugins"]:
            self._call("CHECK", raw, plugin, request, attachment.undo.get("result"))

    def teardown(
        self, request: PodNetworkRequest, attachment: NetworkAttachment | None, timeout: float | None = None
    ) -> None:
        if attachment is not None and attachment.undo.get("config"):
            self._delete(attachment.undo["config"], request, attachment.undo.get("result"), timeout)
        else:
            self._delete(self._current().raw, request, None, timeout)

    def _delete(
        self,
        raw: dict[str, Any],
        request: PodNetworkRequest,
        result: dict[str, Any] | None,
        timeout: float | None = None,
    ) -> None:
        """DEL every plugin in reverse order; all run even if one fails, the first failure is raised.

        With a timeout, the plugins share it: each gets what is left, so a wedged one cannot hold the
        caller past its deadline."""
        deadline = time.monotonic() + (
            timeout if timeout is not None else self._timeout * len(raw["plugins"])
        )
        first_error: Exception | None = None
        for plugin in reversed(raw["plugins"]):
            left = min(self._timeout, deadline - time.monotonic())
            try:
                if left <= 0:
                    raise DeadlineExceeded(f"no time left for CNI DEL of plugin {plugin['type']}")
                self._call("DEL", raw, plugin, request, result, left)
            except Exception as err:
                first_error = first_error or err
        if first_error is not None:
            raise first_error

    def _call(
        self,
        command: str,
        raw: dict[str, Any],
        plugin: dict[str, Any],
        request: PodNetworkRequest,
        prev_result: dict[str, Any] | None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        config = _plugin_config(raw, plugin, request, prev_result)
        call = PluginCall(
            command=command,
            container_id=request.sandbox_id,
            netns=request.netns_path,
            ifname=request.interface,
            args=[
                ("IgnoreUnknown", "1"),
                ("K8S_POD_NAMESPACE", request.pod_namespace),
                ("K8S_POD_NAME", request.pod_name),
                ("K8S_POD_INFRA_CONTAINER_ID", request.sandbox_id),
                ("K8S_POD_UID", request.pod_uid),
            ],
        )
        with span(f"cni.{command.lower()}", **{"cni.plugin": str(plugin["type"])}):
            return invoke(str(plugin["type"]), config, call, self._plugin_dirs, timeout or self._timeout)


def _plugin_config(
    raw: dict[str, Any],
    plugin: dict[str, Any],
    request: PodNetworkRequest,
    prev_result: dict[str, Any] | None,
) -> dict[str, Any]:
    """One plugin's stdin: its own config plus the list's name and version, prevResult and runtimeConfig."""
    config = copy.deepcopy(plugin)
    config["name"] = raw["name"]
    config["cniVersion"] = raw.get("cniVersion", "")
    if prev_result:
        config["prevResult"] = prev_result
    capabilities = plugin.get("capabilities") or {}
    runtime: dict[str, Any] = {}
    mappings = [
        {"hostPort": m.host_port, "containerPort": m.container_port, "protocol": m.protocol}
        | ({"hostIP": m.host_ip} if m.host_ip else {})
        for m in request.port_mappings
        if m.host_port > 0
    ]
    if capabilities.get("portMappings") and mappings:
        runtime["portMappings"] = mappings
    if capabilities.get("dns") and request.dns is not None:
        runtime["dns"] = {
            "servers": request.dns.servers,
            "searches": request.dns.searches,
            "options": request.dns.options,
        }
    if capabilities.get("ips") and request.ips:
        runtime["ips"] = request.ips
    if capabilities.get("bandwidth") and request.bandwidth is not None:
        # Bursts as containerd and cri-o pass them: unlimited within the plugin's 32-bit field.
        limits: dict[str, int] = {}
        if request.bandwidth.ingress_rate:
            limits |= {"ingressRate": request.bandwidth.ingress_rate, "ingressBurst": _MAX_BURST}
        if request.bandwidth.egress_rate:
            limits |= {"egressRate": request.bandwidth.egress_rate, "egressBurst": _MAX_BURST}
        runtime["bandwidth"] = limits
    if runtime:
        config["runtimeConfig"] = runtime
    return config


def _supports_check(version: str) -> bool:
    """CHECK exists from spec 0.4.0 on."""
    try:
        numbers = tuple(int(p) for p in version.split("."))
    except ValueError:
        return False
    return numbers >= (0, 4, 0)
