"""ImageService over a real gRPC channel, wired by the real container with fakes behind the domain.

Mirrors the cri-tools image suite (pkg/validate/image.go) where it does not need a real registry.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from dependency_injector import providers

from adapters.cri.generated import api_pb2 as pb
from app.config import load
from app.container import make_container
from tests.cri_client import CriClient, connect
from tests.fakes.image_users import FakeImageUsers
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.registry import Gate, InMemoryRegistry
from tests.fakes.state_store import InMemoryStateStore
from tests.layer_tars import digest, file, layer, symlink

BASE = layer([file("bin/sh", b"#!", mode=0o755)])


@dataclass
class Rig:
    client: CriClient
    registry: InMemoryRegistry
    users: FakeImageUsers


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    socket = tmp_path / "cri.sock"
    config = load(
        None,
        overrides=[
            f'grpc.listen="unix://{socket}"',
            f'runtime.root="{tmp_path / "root"}"',
            'image.pinned_images=["r.test/pinned*"]',
        ],
    )
    container = make_container(config)
    registry, users = InMemoryRegistry(), FakeImageUsers()
    container.registry.override(providers.Object(registry))
    container.layer_store.override(providers.Object(InMemoryLayerStore()))
    container.state_store.override(providers.Object(InMemoryStateStore()))
    container.image_users.override(providers.Object(users))
    server = container.server()
    server.start()
    client = connect(socket)
    yield Rig(client, registry, users)
    client.close()
    server.stop(1)


def pull(rig: Rig, name: str) -> str:
    return str(rig.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=name))).image_ref)


def status(rig: Rig, name: str, verbose: bool = False) -> pb.ImageStatusResponse:
    response: pb.ImageStatusResponse = rig.client.image.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image=name), verbose=verbose)
    )
    return response


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failure:
        call()  # type: ignore[operator]
    return failure.value.code()


def test_pull_status_and_remove_by_every_reference(rig: Rig) -> None:
    stored = rig.registry.add("r.test/test-image-tag:all", [BASE])
    image_ref = pull(rig, "r.test/test-image-tag:all")
    image = status(rig, "r.test/test-image-tag:all").image
    assert image.id == image_ref
    assert list(image.repo_tags) == ["r.test/test-image-tag:all"]
    assert list(image.repo_digests) == [f"r.test/test-image-tag@{digest(stored.manifest)}"]
    assert image.size > 0
    for reference in [image.id, *image.repo_tags, *image.repo_digests]:
        assert status(rig, reference).image == image, reference
    rig.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=image.id)))
    assert not status(rig, "r.test/test-image-tag:all").HasField("image")


def test_image_without_tag_gets_latest(rig: Rig) -> None:
    rig.registry.add("r.test/test-image-latest", [BASE])
    pull(rig, "r.test/test-image-latest")
    assert list(status(rig, "r.test/test-image-latest").image.repo_tags) == [
        "r.test/test-image-latest:latest"
    ]


def test_image_by_digest_has_only_a_repo_digest(rig: Rig) -> None:
    stored = rig.registry.add("r.test/test-image-digest:x", [BASE])
    reference = f"r.test/test-image-digest@{digest(stored.manifest)}"
    pull(rig, reference)
    image = status(rig, reference).image
    assert list(image.repo_tags) == []
    assert list(image.repo_digests) == [reference]


def test_absent_image_status_is_empty_not_an_error(rig: Rig) -> None:
    response = status(rig, "r.test/nothing:here")
    assert not response.HasField("image")
    assert not response.info


@pytest.mark.parametrize(
    ("user", "uid", "username"),
    [
        ("1002", 1002, ""),
        ("www-data", None, "www-data"),
        ("1003:1003", 1003, ""),
        ("www-data:group", None, "www-data"),
        ("", None, ""),
        ("-5", -5, ""),  # what Go's ParseInt takes, as containerd and cri-o read it
        ("+7", 7, ""),
        ("9223372036854775807", 2**63 - 1, ""),
        # No Int64Value holds these: names, not a failed ImageStatus or ListImages.
        ("99999999999999999999", None, "99999999999999999999"),
        ("\u0661\u0662", None, "\u0661\u0662"),
        (" 7", None, " 7"),
    ],
)
def test_uid_and_username_come_from_the_image_user(
    rig: Rig, user: str, uid: int | None, username: str
) -> None:
    rig.registry.add("r.test/user:1", [BASE], {"User": user})
    pull(rig, "r.test/user:1")
    image = status(rig, "r.test/user:1").image
    assert image.HasField("uid") == (uid is not None)
    assert image.uid.value == (uid or 0)
    assert image.username == username
    (listed,) = rig.client.image.ListImages(pb.ListImagesRequest()).images
    assert (listed.uid, listed.username) == (image.uid, image.username)


def test_verbose_status_carries_the_config(rig: Rig) -> None:
    rig.registry.add("r.test/v:1", [BASE], {"Labels": {"team": "storage"}, "Cmd": ["sh"]})
    pull(rig, "r.test/v:1")
    info = json.loads(status(rig, "r.test/v:1", verbose=True).info["info"])
    assert info["labels"] == {"team": "storage"}
    assert info["imageSpec"]["config"]["Cmd"] == ["sh"]
    assert info["imageSpec"]["rootfs"]["diff_ids"] == [BASE.diff_id]
    assert not status(rig, "r.test/v:1").info


def test_list_and_stream_with_and_without_a_filter(rig: Rig) -> None:
    ids = []
    for index in range(3):
        rig.registry.add(f"r.test/test-image-{index}:latest", [BASE], {"Cmd": [str(index)]})
        ids.append(pull(rig, f"r.test/test-image-{index}:latest"))
    listed = rig.client.image.ListImages(pb.ListImagesRequest()).images
    assert sorted(i.id for i in listed) == sorted(ids)
    for image in listed:
        assert len(image.repo_tags) == 1
    only = rig.client.image.ListImages(
        pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image="r.test/test-image-1")))
    ).images
    assert [i.id for i in only] == [ids[1]]
    streamed = [i.id for r in rig.client.image.StreamImages(pb.StreamImagesRequest()) for i in r.images]
    assert sorted(streamed) == sorted(ids)


def test_tags_of_one_image_are_removed_together(rig: Rig) -> None:
    names = ["r.test/test-image-tags:1", "r.test/test-image-tags:2", "r.test/test-image-tags:3"]
    for name in names:
        rig.registry.add(name, [BASE])
    assert len({pull(rig, name) for name in names}) == 1
    (image,) = rig.client.image.ListImages(pb.ListImagesRequest()).images
    assert sorted(image.repo_tags) == names
    rig.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=names[0])))
    for reference in [*names, image.id]:
        assert not status(rig, reference).HasField("image")


def test_remove_absent_succeeds_and_in_use_is_refused(rig: Rig) -> None:
    rig.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="r.test/none:1")))
    rig.registry.add("r.test/used:1", [BASE])
    image_id = pull(rig, "r.test/used:1")
    rig.users.using[image_id] = ["ctr-42"]
    with pytest.raises(grpc.RpcError) as failure:
        rig.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="r.test/used:1")))
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ctr-42" in str(failure.value.details())
    assert status(rig, image_id).HasField("image")


def test_pinned_images_are_reported(rig: Rig) -> None:
    rig.registry.add("r.test/pinned-pause:3.9", [BASE], {"Cmd": ["p"]})
    rig.registry.add("r.test/free:1", [BASE])
    pull(rig, "r.test/pinned-pause:3.9")
    pull(rig, "r.test/free:1")
    assert status(rig, "r.test/pinned-pause:3.9").image.pinned
    assert not status(rig, "r.test/free:1").image.pinned


def test_image_fs_info(rig: Rig) -> None:
    rig.registry.add("r.test/a:1", [BASE])
    pull(rig, "r.test/a:1")
    info = rig.client.image.ImageFsInfo(pb.ImageFsInfoRequest())
    (images,) = info.image_filesystems
    (containers,) = info.container_filesystems
    assert images.used_bytes.value > 0 and images.inodes_used.value > 0
    assert images.fs_id.mountpoint and containers.fs_id.mountpoint
    assert images.timestamp > 0


def test_failures_have_clear_codes(rig: Rig) -> None:
    image = rig.client.image
    assert code_of(lambda: image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="")))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    rig.registry.add("r.test/other:1", [BASE])  # the registry is there; the image is not
    assert code_of(lambda: image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="r.test/x:1")))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert code_of(lambda: status(rig, "Bad Name")) == grpc.StatusCode.INVALID_ARGUMENT
    rig.registry.add("r.test/evil:1", [layer([symlink("x", "/"), file("x/evil", b"!")])])
    assert code_of(lambda: pull(rig, "r.test/evil:1")) == grpc.StatusCode.INVALID_ARGUMENT
    assert not rig.client.image.ListImages(pb.ListImagesRequest()).images


def test_pull_honours_the_rpc_deadline(rig: Rig) -> None:
    rig.registry.add("r.test/slow:1", [BASE])
    gate = rig.registry.gates[BASE.descriptor.digest] = Gate()
    try:
        with pytest.raises(grpc.RpcError) as failure:
            rig.client.image.PullImage(
                pb.PullImageRequest(image=pb.ImageSpec(image="r.test/slow:1")), timeout=0.2
            )
        assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        gate.release.set()


def test_a_client_that_cancels_pull_image_stops_the_pull(rig: Rig) -> None:
    rig.registry.add("r.test/gone:1", [BASE])
    gate = rig.registry.gates[BASE.descriptor.digest] = Gate()
    call = rig.client.image.PullImage.future(pb.PullImageRequest(image=pb.ImageSpec(image="r.test/gone:1")))
    assert gate.reached.wait(30)
    call.cancel()
    # The download is cancelled, not released: nobody else waits for this pull.
    assert gate.cancelled.wait(30) and not gate.release.is_set()
    assert not rig.client.image.ListImages(pb.ListImagesRequest()).images
    del rig.registry.gates[BASE.descriptor.digest]
    assert pull(rig, "r.test/gone:1")
