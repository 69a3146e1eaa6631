"""The floor under pycrio's idle RSS and list latency: a CRI server with nothing of pycrio in it.

Run as `python -m bench.floor_server SOCKET [ANSWERS_DIR]` with pycrio's interpreter and PYTHONPATH (its
`src` and the repository). It loads what pycrio's daemon loads before any code of its own: grpcio and the
generated CRI modules, dependency-injector (imported as `app.di` does) and structlog, with the daemon's
one malloc arena. It serves both CRI services on a grpcio sync server shaped like pycrio's (same executor,
same message limits), answers Version and Status, and answers ListPodSandbox and ListContainers with the
bytes found in ANSWERS_DIR (pycrio's own answers, taken by the bench just before), sent as they are.
Everything else is UNIMPLEMENTED. It prints "ready" once it serves.

Its RSS is what any daemon on pycrio's required stack pays before doing anything; its list latency is the
cost of grpcio's server alone. The bench sets both beside containerd's (docs/bench.md, "Floors").
"""

import sys
from concurrent import futures
from pathlib import Path

from adapters.process.heap import use_one_arena

use_one_arena()  # as app.main does, before any thread

import grpc  # noqa: E402
import structlog  # noqa: E402,F401  # loaded, as the daemon loads it; not used

from adapters.cri.generated import api_pb2  # noqa: E402
from app.di import containers, providers  # noqa: E402,F401  # loaded, as the composition root loads them

SERVICE = "runtime.v1.RuntimeService"
IMAGE_SERVICE = "runtime.v1.ImageService"
LIST_METHODS = ("ListPodSandbox", "ListContainers")
MESSAGE_LIMIT = 16 * 1024 * 1024
WORKERS = 64 + 64  # pycrio's default grpc.max_workers + grpc.max_streams


def _as_is(data: bytes) -> bytes:
    return data


def _answer(data: bytes) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(lambda request, context: data, response_serializer=_as_is)


def handlers(answers: dict[str, bytes]) -> list[grpc.GenericRpcHandler]:
    version = api_pb2.VersionResponse(
        version="0.1.0", runtime_name="floor", runtime_version="0", runtime_api_version="v1"
    ).SerializeToString()
    ready = api_pb2.StatusResponse(
        status=api_pb2.RuntimeStatus(
            conditions=[
                api_pb2.RuntimeCondition(type="RuntimeReady", status=True),
                api_pb2.RuntimeCondition(type="NetworkReady", status=True),
            ]
        )
    ).SerializeToString()
    methods = {"Version": _answer(version), "Status": _answer(ready)}
    methods.update({name: _answer(data) for name, data in answers.items()})
    return [
        grpc.method_handlers_generic_handler(SERVICE, methods),
        grpc.method_handlers_generic_handler(IMAGE_SERVICE, {}),
    ]


def read_answers(directory: Path | None) -> dict[str, bytes]:
    if directory is None:
        return {}
    return {name: (directory / name).read_bytes() for name in LIST_METHODS if (directory / name).is_file()}


def main(argv: list[str]) -> None:
    socket = argv[0]
    answers = read_answers(Path(argv[1]) if len(argv) > 1 else None)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cri"),
        options=[
            ("grpc.max_receive_message_length", MESSAGE_LIMIT),
            ("grpc.max_send_message_length", MESSAGE_LIMIT),
            ("grpc.max_allowed_incoming_connections", 512),
        ],
    )
    server.add_generic_rpc_handlers(handlers(answers))
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main(sys.argv[1:])
