"""OpenTelemetry spans: one per CRI call with child spans for the CNI, registry, unpack and subprocess calls
it makes, checked with the SDK's in-memory exporter on the real adapters (wired by the real container);
and, with tracing off, no OpenTelemetry module in the daemon at all."""

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.cri.generated import api_pb2 as pb
from adapters.tracing import spans
from adapters.tracing.otel import OpenTelemetryTracing
from app.config import load
from app.container import make_container
from tests.cri_client import CriClient, connect
from tests.e2e.daemon import REPO, Daemon
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry, registries_settings
from tests.pod_host import cleanup, cleanup_run_dir, make_test_network, remove_cgroups


@dataclass
class Traced:
    client: CriClient
    exporter: InMemorySpanExporter


@pytest.fixture
def traced(tmp_path: Path, registry: RunningRegistry) -> Iterator[Traced]:
    network = make_test_network(tmp_path)
    cgroup_parent = f"/pycrio-test-tracing/{secrets.token_hex(4)}"
    socket = tmp_path / "run" / "cri.sock"
    config = load(
        None,
        overrides=[
            f'grpc.listen="unix://{socket}"',
            f'runtime.root="{tmp_path / "root"}"',
            f'runtime.run_dir="{tmp_path / "run"}"',
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'pods.default_cgroup_parent="{cgroup_parent}"',
            *registries_settings(tmp_path, registry),
        ],
    )
    exporter = InMemorySpanExporter()
    spans.install(OpenTelemetryTracing(SimpleSpanProcessor(exporter), 1.0, "test"))
    server = make_container(config).server()
    server.start()
    client = connect(socket)
    try:
        yield Traced(client, exporter)
    finally:
        for pod in client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id))
            client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
        client.close()
        server.stop(1)
        spans.install(None)
        cleanup_run_dir(tmp_path / "run")
        cleanup(network)
        remove_cgroups(cgroup_parent)


def _tree(finished: tuple[ReadableSpan, ...], root_name: str) -> dict[str, list[str]]:
    """Each span's name -> its children's names, for the one trace whose root is `root_name`."""
    (root,) = [s for s in finished if s.name == root_name]
    assert root.parent is None
    trace = [
        s
        for s in finished
        if s.context is not None and root.context is not None and s.context.trace_id == root.context.trace_id
    ]
    by_id = {s.context.span_id: s for s in trace if s.context is not None}
    tree: dict[str, list[str]] = {s.name: [] for s in trace}
    for child in trace:
        if child.parent is not None:
            assert child.parent.span_id in by_id, f"{child.name}'s parent is not in the trace"
            tree[by_id[child.parent.span_id].name].append(child.name)
    return tree


def test_run_pod_sandbox_has_cni_and_subprocess_spans(traced: Traced) -> None:
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="traced", uid="uid-traced", namespace="e2e-tracing")
    )
    traced.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    tree = _tree(tuple(traced.exporter.get_finished_spans()), "cri.RunPodSandbox")
    assert "cni.add" in tree["cri.RunPodSandbox"]
    # One cni.add per plugin of the test network's list, each running its plugin binary.
    assert {"exec bridge", "exec portmap"} <= set(tree["cni.add"])
    # The namespace pinning and the infra launcher run as helper processes of the call.
    assert [name for name in tree["cri.RunPodSandbox"] if name.startswith("exec ")]
    (root,) = [s for s in traced.exporter.get_finished_spans() if s.name == "cri.RunPodSandbox"]
    assert root.attributes is not None and root.attributes["rpc.grpc.status_code"] == 0
    assert root.attributes["name"] == "traced"


def test_pull_image_has_registry_and_unpack_spans_in_its_worker(
    traced: Traced, registry: RunningRegistry, pushed_images: PushedImages
) -> None:
    image = pushed_images.multilayer
    name = f"{registry.host}/{image.repository}:{image.tag}"
    traced.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=name)), timeout=120)
    tree = _tree(tuple(traced.exporter.get_finished_spans()), "cri.PullImage")
    assert tree["cri.PullImage"].count("registry.resolve") == 1
    assert "registry.GET" in tree["registry.resolve"]
    unpacks = tree["cri.PullImage"].count("storage.unpack")
    assert unpacks == len(image.layers) > 1
    assert "registry.GET" in tree["storage.unpack"]


def test_create_and_start_container_have_runtime_and_monitor_spans(
    traced: Traced, registry: RunningRegistry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    image = pushed_images.busybox
    name = f"{registry.host}/{image.repository}:{image.tag}"
    traced.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=name)), timeout=120)
    host_network = pb.NamespaceOption(network=pb.NODE)
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="traced-ctr", uid="uid-traced-ctr", namespace="e2e-tracing"),
        log_directory=str(tmp_path / "logs"),
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=host_network)
        ),
    )
    pod = traced.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=sandbox)).pod_sandbox_id
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="sleeper"),
        image=pb.ImageSpec(image=name),
        command=["sleep", "60"],
        log_path="sleeper.log",
    )
    created = traced.client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=pod, config=config, sandbox_config=sandbox)
    ).container_id
    traced.client.runtime.StartContainer(pb.StartContainerRequest(container_id=created))
    traced.client.runtime.StopContainer(pb.StopContainerRequest(container_id=created, timeout=1))
    traced.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=created))
    finished = tuple(traced.exporter.get_finished_spans())
    create, start = _tree(finished, "cri.CreateContainer"), _tree(finished, "cri.StartContainer")
    # conmon runs `runc create` itself: the monitor's span is the creation.
    assert "monitor.start" in create["cri.CreateContainer"]
    assert "runtime.start" in start["cri.StartContainer"]
    assert "exec runc" in start["runtime.start"]


def test_a_failed_call_marks_its_span_as_an_error(traced: Traced) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        traced.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="absent"))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    (root,) = [s for s in traced.exporter.get_finished_spans() if s.name == "cri.ContainerStatus"]
    assert root.status.status_code.name == "ERROR"
    assert root.status.description == "NOT_FOUND"


def test_with_tracing_off_no_opentelemetry_module_is_loaded(tmp_path: Path) -> None:
    """The daemon's start-up path, an RPC through the interceptor and a pull's spans, in a fresh process."""
    script = f"""
import sys
from app.config import load
from app.container import make_container
from app.logging import configure_logging
from app.tracing import start_tracing
from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import connect
config = load(None, overrides=['grpc.listen="unix://{tmp_path}/cri.sock"', 'runtime.root="{tmp_path}/root"',
                                'runtime.run_dir="{tmp_path}/run"'])
configure_logging(config.log)
stop = start_tracing(config.tracing)
server = make_container(config).server()
server.start()
client = connect(__import__("pathlib").Path("{tmp_path}/cri.sock"))
client.runtime.Version(pb.VersionRequest())
client.image.ListImages(pb.ListImagesRequest())
client.close()
server.stop(1)
stop()
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
print("loaded:", loaded)
assert "adapters.tracing.spans" in sys.modules
sys.exit(1 if loaded else 0)
"""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{REPO}")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace collector that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_the_daemon_exports_spans_to_an_otlp_collector(tmp_path: Path) -> None:
    collector = _Collector()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    daemon = Daemon(tmp_path / "d", ["tracing.enabled=true", f'tracing.endpoint="127.0.0.1:{port}"']).start()
    try:
        daemon.client.runtime.Version(pb.VersionRequest())
    finally:
        assert daemon.stop() == 0  # a clean stop flushes the batch
        server.stop(0)
    exported = [
        (resource.resource, span)
        for request in collector.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = [span.name for _, span in exported]
    assert "cri.Version" in names, names
    resource = exported[names.index("cri.Version")][0]
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "pycrio"
