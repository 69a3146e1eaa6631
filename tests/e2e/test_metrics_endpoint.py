"""The daemon's Prometheus endpoint, scraped over HTTP while CRI calls are made."""

import socket
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.cri.generated import api_pb2 as pb
from adapters.process.runner import run
from tests.e2e.daemon import Daemon
from tests.fixtures.images import file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.storage_fixtures import unmount_all_under


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_rpcs(tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon(tmp_path / "d", ["metrics.enabled=true", f"metrics.port={port}"]).start()
    try:
        before = scrape(port)
        for _ in range(3):
            daemon.client.runtime.Version(pb.VersionRequest())
        assert list(daemon.client.runtime.ListContainerStats(pb.ListContainerStatsRequest()).stats) == []
        with pytest.raises(grpc.RpcError):
            daemon.client.runtime.ContainerStats(pb.ContainerStatsRequest(container_id="missing"))
        after = scrape(port)
        calls = "pycrio_cri_operations_total"
        assert value(after, calls, method="Version") == value(before, calls, method="Version") + 3
        assert value(after, calls, method="ListContainerStats") == 1
        assert (
            value(after, "pycrio_cri_operations_errors_total", method="ContainerStats", code="NOT_FOUND") == 1
        )
        assert value(after, "pycrio_cri_operations_latency_seconds_count", method="Version") >= 3
        for family in (
            "pycrio_image_pulls_success_total",
            "pycrio_containers_oom_killed_total",
            "pycrio_container_events_dropped_total",
            "pycrio_image_pulls_bytes_total",
        ):
            assert (family, ()) in after, family
        # What an operator runs.
        curl = run(["curl", "-sf", f"http://127.0.0.1:{port}/metrics"], timeout=30)
        assert b'pycrio_cri_operations_total{method="Version"} 3.0' in curl.stdout
    finally:
        daemon.stop()


def test_endpoint_is_off_by_default(tmp_path: Path) -> None:
    port = free_port()
    daemon = Daemon(tmp_path / "d", [f"metrics.port={port}"]).start()
    try:
        daemon.client.runtime.Version(pb.VersionRequest())
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        daemon.stop()


def test_image_pulls_are_counted(registry: RunningRegistry, tmp_path: Path) -> None:
    layers = [make_layer([file("data/a", b"a" * 40_000)]), make_layer([file("data/b", b"b" * 10_000)])]
    pusher = Pusher(registry)
    try:
        push_image(pusher, "pycrio/monitoring-pull", "1", layers, image_config(layers))
    finally:
        pusher.close()
    conf = tmp_path / "registries.conf"
    conf.write_text(registries_conf_text(registry))
    (tmp_path / "registries.conf.d").mkdir()
    port = free_port()
    daemon = Daemon(
        tmp_path / "d",
        [
            "metrics.enabled=true",
            f"metrics.port={port}",
            f'image.registries_conf="{conf}"',
            f'image.registries_conf_dir="{tmp_path / "registries.conf.d"}"',
        ],
    ).start()
    try:
        image = f"{registry.host}/pycrio/monitoring-pull:1"
        daemon.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)), timeout=120)
        with pytest.raises(grpc.RpcError) as failure:
            daemon.client.image.PullImage(
                pb.PullImageRequest(image=pb.ImageSpec(image=f"{registry.host}/pycrio/absent:1")), timeout=120
            )
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        samples = scrape(port)
        assert value(samples, "pycrio_image_pulls_success_total") == 1
        assert value(samples, "pycrio_image_pulls_failure_total", reason="NotFound") == 1
        assert value(samples, "pycrio_image_pulls_bytes_total") >= sum(layer.size for layer in layers)
        assert value(samples, "pycrio_cri_operations_errors_total", method="PullImage", code="NOT_FOUND") == 1
        daemon.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))
    finally:
        daemon.stop()
        unmount_all_under(tmp_path)
