"""Requests protobuf refuses are explained by field path; and answered INVALID_ARGUMENT, not INTERNAL."""

from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.request_decoding import Undecodable, tolerant
from adapters.cri.wire_faults import MAX_DEPTH, first_fault

CREATE = cast(Descriptor, pb.CreateContainerRequest.DESCRIPTOR)


def _create_with(**config: object) -> bytes:
    return pb.CreateContainerRequest(
        pod_sandbox_id="abc",
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"), **config),  # type: ignore[arg-type]
    ).SerializeToString()


def _spoil(data: bytes, marker: bytes) -> bytes:
    """`data` with the first byte of `marker` made 0xFF (never UTF-8), lengths unchanged."""
    assert data.count(marker) == 1
    return data.replace(marker, b"\xff" + marker[1:])


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (_spoil(_create_with(envs=[pb.KeyValue(key="A"), pb.KeyValue(key="MARK")]), b"MARK"),
         "config.envs[1].key: not valid UTF-8 (byte 0)"),
        (_spoil(_create_with(labels={"MARK": "c"}), b"MARK"), "config.labels[0].key: not valid UTF-8"),
        (_spoil(_create_with(command=["/bin/sh", "-c", "MARK"]), b"MARK"),
         "config.command[2]: not valid UTF-8"),
        (_spoil(pb.CreateContainerRequest(pod_sandbox_id="MARK").SerializeToString(), b"MARK"),
         "pod_sandbox_id: not valid UTF-8"),
        (_create_with(working_dir="/tmp")[:-2], "config: its length runs past the end"),
        (b"\x0a", "pod_sandbox_id: the message ends inside a number"),
        (b"\x7f", "field 15: wire type 7 does not exist"),
        (b"\x00\x01", "request: field number 0 is not valid"),
        (b"\x0c", "request: a group ends that never started"),
        (b"\x0a" + b"\xff" * 10 + b"\x01", "pod_sandbox_id: a number longer than 10 bytes"),
        (b"\x4b" * (MAX_DEPTH + 2), "field 9: nested more than 100 levels deep"),
    ],
)  # fmt: skip
def test_the_first_fault_is_named_by_its_field(data: bytes, fault: str) -> None:
    with pytest.raises(DecodeError):
        pb.CreateContainerRequest.FromString(data)
    assert first_fault(CREATE, data).startswith(fault)


def test_binary_environment_values_parse_as_the_kubelet_sends_them() -> None:
    """cri-api 1.36.2 made KeyValue.value bytes: a Secret's binary value is a valid request."""
    data = _create_with(envs=[pb.KeyValue(key="BIN", value=b"\xff\xfe\x00x")])
    assert pb.CreateContainerRequest.FromString(data).config.envs[0].value == b"\xff\xfe\x00x"


def test_valid_requests_and_too_many_fields_name_no_fault() -> None:
    assert first_fault(CREATE, _create_with(working_dir="/tmp")) == ""
    assert first_fault(CREATE, b"\x28\x01" * 200_000) == ""  # unknown varint fields past the read limit


def test_the_tolerant_deserializer_hands_over_an_undecodable_with_the_reason() -> None:
    deserialize = tolerant(pb.PodSandboxStatusRequest.FromString)
    assert deserialize is not None
    assert deserialize(b"\x0a\x01a") == pb.PodSandboxStatusRequest(pod_sandbox_id="a")
    spoilt = deserialize(b"\x0a\x02\xff\xfe")
    assert isinstance(spoilt, Undecodable)
    assert spoilt.reason == "pod_sandbox_id: not valid UTF-8 (byte 0)"
    unexplained = deserialize(b"\x10\x80")  # a varint cut short past the last known field: found anyway
    assert isinstance(unexplained, Undecodable) and unexplained.reason.startswith("verbose: ")
