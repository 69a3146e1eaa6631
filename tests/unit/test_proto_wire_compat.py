"""The generated CRI code holds exactly the RPCs, messages, field numbers and types and enum values of cri-api
kubernetes-1.36.3 (where KeyValue.value became bytes)."""

from pathlib import Path

from google.protobuf import descriptor, descriptor_pb2

from adapters.cri.generated import api_pb2

EXPECTED = Path(__file__).parent / "data" / "cri-api-1.36.3.txt"


def _describe_message(message: descriptor.Descriptor, out: list[str]) -> None:
    name = message.full_name
    out.append(f"message {name}")
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    for field in proto.field:
        kind = field.type_name.lstrip(".") or descriptor_pb2.FieldDescriptorProto.Type.Name(field.type)
        label = descriptor_pb2.FieldDescriptorProto.Label.Name(field.label)
        out.append(f"field {name}.{field.name} = {field.number} {label} {kind}")
    for enum in message.enum_types:
        out.append(f"enum {enum.full_name}")
        out.extend(f"value {enum.full_name}.{v.name} = {v.number}" for v in enum.values)
    for nested in message.nested_types:
        _describe_message(nested, out)


def _describe_generated() -> list[str]:
    file = api_pb2.DESCRIPTOR
    out: list[str] = []
    for message in file.message_types_by_name.values():
        _describe_message(message, out)
    for enum in file.enum_types_by_name.values():
        out.append(f"enum {enum.full_name}")
        out.extend(f"value {enum.full_name}.{v.name} = {v.number}" for v in enum.values)
    for service in file.services_by_name.values():
        for method in service.methods:
            stream = "stream " if method.server_streaming else ""
            out.append(
                f"rpc {service.full_name}.{method.name} {method.input_type.full_name} -> "
                f"{stream}{method.output_type.full_name}"
            )
    return out


def test_package_is_runtime_v1() -> None:
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"


def test_every_rpc_message_field_and_enum_value_matches_upstream() -> None:
    expected = [line for line in EXPECTED.read_text().splitlines() if line and not line.startswith("#")]
    generated = _describe_generated()
    assert sorted(set(expected) - set(generated)) == []
    assert sorted(set(generated) - set(expected)) == []


def test_forty_one_rpcs() -> None:
    services = api_pb2.DESCRIPTOR.services_by_name
    assert len(services["RuntimeService"].methods) + len(services["ImageService"].methods) == 41
