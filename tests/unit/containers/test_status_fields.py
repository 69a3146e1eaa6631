"""ContainerStatus and ListContainers field by field, as a 1.36 kubelet reads them, through the CRI handlers
over the real service with fakes behind it; and container records written before a field existed."""

import json
from typing import Any

from adapters.cri.containers import ContainerHandlers
from adapters.cri.generated import api_pb2 as pb
from tests.fakes.container_rootfs import FakeImage
from tests.unit.containers.test_container_service import World, world  # noqa: F401


class Context:
    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None


CTX: Any = Context()
_KUBELET_IMAGE = pb.ImageSpec(
    image="img1",  # the kubelet hands back PullImage's answer, the image id
    user_specified_image="busybox",
    annotations={"example.com/pulled-for": "web"},
    runtime_handler="runc",
)


def _config(name: str = "web", image: pb.ImageSpec = _KUBELET_IMAGE) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=1),
        image=image,
        command=["/bin/sh", "-c", "sleep 1000"],
        log_path=f"{name}/1.log",
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pb.NamespaceOption(pid=pb.CONTAINER)
            )
        ),
    )


def _create(handlers: ContainerHandlers, image: pb.ImageSpec = _KUBELET_IMAGE) -> str:
    request = pb.CreateContainerRequest(pod_sandbox_id="sb1", config=_config(image=image))
    return handlers.CreateContainer(request, CTX).container_id


def _status(handlers: ContainerHandlers, container_id: str) -> pb.ContainerStatus:
    return handlers.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id), CTX).status


def _listed(handlers: ContainerHandlers) -> list[pb.Container]:
    answer = handlers.ListContainers(pb.ListContainersRequest(), CTX)
    return list(pb.ListContainersResponse.FromString(answer.data).containers)


def test_the_image_spec_of_create_comes_back_in_status_and_list(world: World) -> None:  # noqa: F811
    """The image by its tag (the kubelet named it by id), with what the pod spec said, the annotations and
    the runtime handler of the request, as containerd answers them."""
    handlers = ContainerHandlers(world.service)
    cid = _create(handlers)
    expected = pb.ImageSpec(
        image="busybox:latest",
        user_specified_image="busybox",
        annotations={"example.com/pulled-for": "web"},
        runtime_handler="runc",
    )
    status = _status(handlers, cid)
    assert status.image == expected
    assert (status.image_ref, status.image_id) == ("busybox:latest@sha256:img1", "img1")
    (listed,) = _listed(handlers)
    assert listed.image == expected
    assert (listed.image_ref, listed.image_id) == ("busybox:latest@sha256:img1", "img1")


def test_the_image_spec_survives_a_restart(world: World) -> None:  # noqa: F811
    cid = _create(ContainerHandlers(world.service))
    status = _status(ContainerHandlers(world.restarted()), cid)
    assert (status.image.user_specified_image, status.image.runtime_handler) == ("busybox", "runc")
    assert dict(status.image.annotations) == {"example.com/pulled-for": "web"}


def test_an_image_spec_without_the_new_fields_answers_them_empty(world: World) -> None:  # noqa: F811
    """crictl and older kubelets send only `image`: nothing else is made up."""
    handlers = ContainerHandlers(world.service)
    cid = _create(handlers, pb.ImageSpec(image="busybox:latest"))
    assert _status(handlers, cid).image == pb.ImageSpec(image="busybox:latest")


def test_records_written_before_the_image_spec_was_kept_still_load(world: World) -> None:  # noqa: F811
    """State survives an upgrade: a container record without the ImageSpec fields (what pycrio wrote before
    it kept them) loads, answers them empty, and keeps everything else."""
    cid = _create(ContainerHandlers(world.service))
    document = world.store.get("containers", cid)
    assert document is not None
    for key in ("user_specified_image", "image_annotations", "image_runtime_handler"):
        del document["config"][key]
    world.store.put("containers", cid, document)
    handlers = ContainerHandlers(world.restarted())
    status = _status(handlers, cid)
    assert status.image == pb.ImageSpec(image="busybox:latest")
    assert (status.metadata.name, status.state, status.log_path) == (
        "web", pb.CONTAINER_CREATED, f"{world.sandbox.log_directory}/web/1.log",
    )  # fmt: skip
    handlers.StartContainer(pb.StartContainerRequest(container_id=cid), CTX)
    assert _status(handlers, cid).state == pb.CONTAINER_RUNNING


def test_verbose_info_has_cri_o_s_keys(world: World) -> None:  # noqa: F811
    """`crictl inspect` templates written for cri-o read sandboxID, pid, privileged and runtimeSpec."""
    handlers = ContainerHandlers(world.service)
    cid = _create(handlers)
    request = pb.ContainerStatusRequest(container_id=cid, verbose=True)
    info = json.loads(handlers.ContainerStatus(request, CTX).info["info"])
    assert (info["sandboxID"], info["privileged"]) == ("sb1", False)
    assert info["runtimeSpec"]["process"]["args"] == ["/bin/sh", "-c", "sleep 1000"]
    assert not handlers.ContainerStatus(pb.ContainerStatusRequest(container_id=cid), CTX).info


def test_every_stop_signal_comes_back_as_it_was_asked(world: World) -> None:  # noqa: F811
    """stop_signal in the status (the kubelet's ContainerStopSignals shows it in the pod status) is the one
    asked for, the real-time ones counted down from SIGRTMAX too; none asked and no STOPSIGNAL: SIGTERM."""
    handlers = ContainerHandlers(world.service)
    answered: dict[int, int] = {}
    for signal in pb.Signal.values():
        config = _config(f"s{int(signal)}")
        config.MergeFrom(pb.ContainerConfig(stop_signal=pb.Signal.Name(signal)))
        request = pb.CreateContainerRequest(pod_sandbox_id="sb1", config=config)
        answered[signal] = _status(handlers, handlers.CreateContainer(request, CTX).container_id).stop_signal
    asked: dict[int, int] = {signal: signal for signal in pb.Signal.values()}
    assert answered == {**asked, pb.RUNTIME_DEFAULT: pb.SIGTERM}


def test_an_image_volume_s_image_spec_comes_back_in_the_mounts(world: World) -> None:  # noqa: F811
    """As containerd answers the request's mounts, with the image id the volume resolved to (KEP-5365)."""
    world.rootfs.add_image(FakeImage("data1", ("data:1",), files={"/etc/app/conf": "x"}))
    handlers = ContainerHandlers(world.service)
    config = _config("vol")
    volume = pb.ImageSpec(
        image="data:1", user_specified_image="data", annotations={"a": "b"}, runtime_handler="runc"
    )
    config.mounts.append(pb.Mount(container_path="/mnt/data", readonly=True, image=volume))
    config.mounts.append(pb.Mount(container_path="/mnt/host", host_path="/data"))
    cid = handlers.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id="sb1", config=config), CTX
    ).container_id
    image_volume, host = _status(handlers, cid).mounts
    expected = pb.ImageSpec()
    expected.CopyFrom(volume)
    expected.image_ref = "data1"
    assert (image_volume.container_path, image_volume.readonly, image_volume.image) == (
        "/mnt/data",
        True,
        expected,
    )
    assert (host.host_path, host.HasField("image")) == ("/data", False)
