"""ImageService: PullImage, ImageStatus, ListImages, StreamImages, RemoveImage, ImageFsInfo.

PullImage answers the image id (the hex of the config digest), as cri-o does, and ImageStatus, ListImages
and the containers' image ids use the same value, so the kubelet can hand it back as a reference.
"""

import json
import time
from collections.abc import Iterator

import grpc

from adapters.cri.generated import api_pb2 as pb
from domain.cancellation import Cancellation
from domain.errors import Cancelled, InvalidArgument
from domain.image_config import image_user
from domain.images import ImageService
from ports.image_store import ImageRecord
from ports.layer_store import FilesystemUsage
from ports.registry import RegistryAuth

# Images per StreamImages message, small enough to stay far below gRPC's 4 MiB message limit.
STREAM_CHUNK = 100


class ImageHandlers:
    def __init__(self, service: ImageService) -> None:
        self._service = service

    def PullImage(self, request: pb.PullImageRequest, context: grpc.ServicerContext) -> pb.PullImageResponse:
        # gRPC calls back when the call ends, and a client that cancels (or goes away) ends it: the pull
        # stops waiting at once, and stops downloading unless another caller still waits for it.
        name = _image_name(request.image)
        gone = Cancellation()
        reason = Cancelled(f"pulling {name}: the client cancelled the call")
        if not context.add_callback(lambda: gone.cancel(reason)):
            gone.cancel(reason)
        image_id = self._service.pull(
            name,
            _auth(request),
            timeout=context.time_remaining(),
            namespace=_pod_namespace(request),
            cancel=gone,
        )
        return pb.PullImageResponse(image_ref=image_id)

    def ImageStatus(
        self, request: pb.ImageStatusRequest, context: grpc.ServicerContext
    ) -> pb.ImageStatusResponse:
        image = self._service.status(_image_name(request.image))
        if image is None:
            return pb.ImageStatusResponse()
        response = pb.ImageStatusResponse(image=self._image(image))
        if request.verbose:
            info: dict[str, object] = {"imageSpec": image.oci_config}
            if image.config.labels:
                info["labels"] = image.config.labels
            response.info["info"] = json.dumps(info, sort_keys=True)
        return response

    def ListImages(
        self, request: pb.ListImagesRequest, context: grpc.ServicerContext
    ) -> pb.ListImagesResponse:
        return pb.ListImagesResponse(images=self._list(request.filter))

    def StreamImages(
        self, request: pb.StreamImagesRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StreamImagesResponse]:
        images = self._list(request.filter)
        for start in range(0, len(images), STREAM_CHUNK):
            yield pb.StreamImagesResponse(images=images[start : start + STREAM_CHUNK])

    def RemoveImage(
        self, request: pb.RemoveImageRequest, context: grpc.ServicerContext
    ) -> pb.RemoveImageResponse:
        self._service.remove(_image_name(request.image))
        return pb.RemoveImageResponse()

    def ImageFsInfo(
        self, request: pb.ImageFsInfoRequest, context: grpc.ServicerContext
    ) -> pb.ImageFsInfoResponse:
        usage = self._service.fs_usage()
        now = time.time_ns()
        return pb.ImageFsInfoResponse(
            image_filesystems=[_fs_usage(usage.image_layers, now)],
            container_filesystems=[_fs_usage(usage.container_layers, now)],
        )

    def _list(self, image_filter: pb.ImageFilter) -> list[pb.Image]:
        reference = image_filter.image.image if image_filter.HasField("image") else ""
        return [self._image(image) for image in self._service.list_images(reference)]

    def _image(self, image: ImageRecord) -> pb.Image:
        uid, username = image_user(image.config.user)
        message = pb.Image(
            id=image.id,
            repo_tags=list(image.repo_tags),
            repo_digests=list(image.repo_digests),
            size=image.size,
            username=username,
            spec=pb.ImageSpec(),
            pinned=self._service.is_pinned(image),
        )
        if uid is not None:
            message.uid.value = uid
        return message


def _image_name(spec: pb.ImageSpec) -> str:
    name = spec.image.strip()
    if not name:
        raise InvalidArgument("no image specified")
    return name


def _pod_namespace(request: pb.PullImageRequest) -> str:
    """The pod's namespace when the kubelet sent its sandbox config (it may choose the signature policy)."""
    if not request.HasField("sandbox_config") or not request.sandbox_config.HasField("metadata"):
        return ""
    return str(request.sandbox_config.metadata.namespace)


def _auth(request: pb.PullImageRequest) -> RegistryAuth | None:
    """The request's credentials; None when it carries none (an empty AuthConfig is none)."""
    if not request.HasField("auth") or request.auth.ByteSize() == 0:
        return None
    auth = request.auth
    return RegistryAuth(
        username=auth.username,
        password=auth.password,
        auth=auth.auth,
        identity_token=auth.identity_token,
        registry_token=auth.registry_token,
        server_address=auth.server_address,
    )


def _fs_usage(usage: FilesystemUsage, timestamp: int) -> pb.FilesystemUsage:
    return pb.FilesystemUsage(
        timestamp=timestamp,
        fs_id=pb.FilesystemIdentifier(mountpoint=str(usage.mountpoint)),
        used_bytes=pb.UInt64Value(value=usage.used_bytes),
        inodes_used=pb.UInt64Value(value=usage.inodes_used),
    )
