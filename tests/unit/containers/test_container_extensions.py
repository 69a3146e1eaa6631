"""The containers service with CDI specs, OCI hooks and a log size limit, against the fakes."""

import json
from pathlib import Path
from typing import Any

import pytest

from domain.containers import ContainerService
from domain.errors import InvalidArgument, NotFound
from domain.oci_spec import HostDevice
from tests.fakes.cdi_specs import FakeCdiSpecs
from tests.fakes.host_files import FakeHostFiles
from tests.fakes.oci_hooks import FakeOciHooks
from tests.unit.containers.test_container_service import World, config, make_service
from tests.unit.containers.test_container_service import world as world_fixture  # noqa: F401 (the fixture)

GPU_SPEC = json.dumps({
    "cdiVersion": "0.5.0", "kind": "example.com/gpu",
    "devices": [{"name": "gpu0", "containerEdits": {
        "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/pctest-null"}], "env": ["GPU=0"]}}],
})  # fmt: skip
MARKER_HOOK = json.dumps({"version": "1.0.0", "hook": {"path": "/usr/bin/marker"},
                          "when": {"annotations": {"^trace$": "^on$"}}, "stages": ["poststop"]})  # fmt: skip


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    """The containers service unit tests' world of fakes (their fixture, imported above)."""
    found: World = request.getfixturevalue("world_fixture")
    return found


def service(world: World, **extensions: Any) -> ContainerService:
    null_like = HostDevice("/dev/pctest-null", "c", 1, 3)
    return make_service(world, FakeHostFiles(devices={"/dev/pctest-null": null_like}), **extensions)


def test_cdi_devices_from_the_field_and_annotations_reach_the_spec(world: World) -> None:
    specs = FakeCdiSpecs([{"gpu.json": GPU_SPEC}])
    svc = service(world, cdi_specs=specs)
    by_field = svc.create("sb1", config(name="a", cdi_devices=("example.com/gpu=gpu0",)))
    spec = world.bundles.read(world.bundles.path(by_field))
    gpu = [d for d in spec["linux"]["devices"] if d["path"] == "/dev/gpu0"]
    assert gpu == [{"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    assert "GPU=0" in spec["process"]["env"]
    annotated = config(name="b", annotations={"cdi.k8s.io/drv": "example.com/gpu=gpu0"})
    by_annotation = svc.create("sb1", annotated)
    assert "GPU=0" in world.bundles.read(world.bundles.path(by_annotation))["process"]["env"]
    restarted = world.restarted()  # the request is remembered: a kubelet retry after a restart matches it
    assert restarted.status(by_field).config.cdi_devices == ("example.com/gpu=gpu0",)


def test_an_unknown_cdi_device_is_not_found_and_leaves_nothing(world: World) -> None:
    svc = service(world, cdi_specs=FakeCdiSpecs([{"gpu.json": GPU_SPEC}]))
    with pytest.raises(NotFound, match=r"example\.com/gpu=gpu7"):
        svc.create("sb1", config(cdi_devices=("example.com/gpu=gpu7",)))
    with pytest.raises(InvalidArgument, match="not-qualified"):
        svc.create("sb1", config(cdi_devices=("not-qualified",)))
    assert not world.rootfs.rootfs and not world.store.list("containers") and not svc.list_containers()
    without_dirs = service(world)
    with pytest.raises(NotFound, match=r"example\.com/gpu=gpu0"):
        without_dirs.create("sb1", config(cdi_devices=("example.com/gpu=gpu0",)))


def test_hooks_that_match_are_in_the_spec_and_others_are_not(world: World) -> None:
    svc = service(world, oci_hooks=FakeOciHooks([{"10-marker.json": MARKER_HOOK}], {"/usr/bin/marker"}))
    traced = svc.create("sb1", config(name="t", annotations={"trace": "on"}))
    plain = svc.create("sb1", config(name="p"))
    hooks = world.bundles.read(world.bundles.path(traced))["hooks"]
    assert hooks == {"poststop": [{"path": "/usr/bin/marker"}]}
    assert "hooks" not in world.bundles.read(world.bundles.path(plain))


def test_the_log_size_limit_keeps_the_log_small(world: World, tmp_path: Path) -> None:
    svc = service(world, log_size_max=8192)
    lines = "; ".join(f"echo line-{i:04d}-" + "x" * 60 for i in range(400))
    cid = svc.create("sb1", config(f"{lines}; sleep 1000"))
    svc.start(cid)
    log = Path(svc.status(cid).log_path)
    assert 0 < log.stat().st_size <= 8192
    text = log.read_text()
    assert "line-0399-" in text and "line-0000-" not in text
