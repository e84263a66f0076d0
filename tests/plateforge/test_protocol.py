"""The checked-in stubs match the .proto files, and the .proto files document every message,
field, enum value and rpc (read by protoc, with its source info, not by a pattern)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from tests.conftest import REPO


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_proto.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _descriptors(tmp_path: Path) -> descriptor_pb2.FileDescriptorSet:
    """The .proto files as protoc reads them, with each element's comments (source info)."""
    from grpc_tools import protoc  # dev-only dependency, as scripts/gen_proto.py uses it

    proto_root = REPO / "proto"
    include = Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "plateforge" / "v1").glob("*.proto"))
    out = tmp_path / "protos.pb"
    args = ["protoc", f"-I{proto_root}", f"-I{include}", "--include_source_info", f"--descriptor_set_out={out}"]
    assert protoc.main([*args, *protos]) == 0
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _undocumented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    """Every message, field, enum, enum value, service and rpc of ``file`` without a leading
    ``//`` comment. A map's entry message is protoc's, not ours: its map field carries the comment."""
    comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}
    missing: list[str] = []

    def check(path: list[int], what: str) -> None:
        if not comments.get(tuple(path)):
            missing.append(f"{file.name}: {what}")

    def enum(e: descriptor_pb2.EnumDescriptorProto, path: list[int], prefix: str) -> None:
        check(path, f"enum {prefix}{e.name}")
        for j, value in enumerate(e.value):
            check([*path, 2, j], f"enum value {prefix}{e.name}.{value.name}")

    def message(m: descriptor_pb2.DescriptorProto, path: list[int], prefix: str) -> None:
        if m.options.map_entry:
            return
        check(path, f"message {prefix}{m.name}")
        for j, f in enumerate(m.field):  # descriptor.proto: DescriptorProto.field = 2, nested_type = 3, enum_type = 4
            check([*path, 2, j], f"field {prefix}{m.name}.{f.name}")
        for j, nested in enumerate(m.nested_type):
            message(nested, [*path, 3, j], f"{prefix}{m.name}.")
        for j, e in enumerate(m.enum_type):
            enum(e, [*path, 4, j], f"{prefix}{m.name}.")

    for i, m in enumerate(file.message_type):  # FileDescriptorProto: message_type = 4, enum_type = 5, service = 6
        message(m, [4, i], "")
    for i, e in enumerate(file.enum_type):
        enum(e, [5, i], "")
    for i, service in enumerate(file.service):
        check([6, i], f"service {service.name}")
        for j, rpc in enumerate(service.method):
            check([6, i, 2, j], f"rpc {service.name}.{rpc.name}")
    return missing


def test_every_message_field_enum_value_and_rpc_has_a_comment(tmp_path: Path) -> None:
    """The contract is the documentation: each element gets a ``//`` line above it (units, bounds,
    who fills it, what empty means), as grpc's own examples do; a trailing comment is not enough."""
    files = _descriptors(tmp_path).file
    assert len(files) == len(list((REPO / "proto" / "plateforge" / "v1").glob("*.proto")))
    undocumented = [line for f in files for line in _undocumented(f)]
    assert undocumented == [], undocumented


def test_the_comment_check_sees_fields_and_enum_values(tmp_path: Path) -> None:
    """The check above fails on an uncommented field and enum value (so it cannot pass vacuously)."""
    from grpc_tools import protoc

    (tmp_path / "x.proto").write_text(
        'syntax = "proto3";\n// A message.\nmessage M {\n  int32 bare = 1;  // trailing only\n'
        "  // An enum.\n  enum E {\n    E_UNSPECIFIED = 0;\n  }\n}\n"
    )
    out = tmp_path / "x.pb"
    assert (
        protoc.main(["protoc", f"-I{tmp_path}", "--include_source_info", f"--descriptor_set_out={out}", "x.proto"]) == 0
    )
    (file,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert _undocumented(file) == ["x.proto: field M.bare", "x.proto: enum value M.E.E_UNSPECIFIED"]
