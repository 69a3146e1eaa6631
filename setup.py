"""Generates the CRI gRPC modules from proto/ and compiles the namespace helper (pycrio-ns) before setuptools
collects packages, so that a wheel built with `pip install .` or `pip wheel .` contains them (grpcio-tools
is a build requirement in pyproject.toml; the helper needs a C compiler and static libc, as `make helpers`).
`make proto` and `make helpers` run the same commands for a development checkout."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PROTO = ROOT / "proto" / "runtime" / "v1" / "api.proto"
GENERATED = ROOT / "src" / "adapters" / "cri" / "generated"
NRI_PROTOS = [ROOT / "proto" / "nri" / "nri.proto", ROOT / "proto" / "nri" / "ttrpc.proto"]
NRI_GENERATED = ROOT / "src" / "adapters" / "nri" / "generated"
NS_HELPER = ROOT / "src" / "adapters" / "namespaces" / "pycrio-ns"


def generate() -> None:
    outputs = [GENERATED / name for name in ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py", "__init__.py")]
    if all(p.exists() and p.stat().st_mtime >= PROTO.stat().st_mtime for p in outputs):
        return
    GENERATED.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-Iadapters/cri/generated={PROTO.parent}",
            f"--python_out={ROOT / 'src'}",
            f"--pyi_out={ROOT / 'src'}",
            f"--grpc_python_out={ROOT / 'src'}",
            str(PROTO),
        ],
        check=True,
    )
    (GENERATED / "__init__.py").touch()


def generate_nri() -> None:
    """The NRI messages and the ttrpc envelope (no gRPC stubs: NRI speaks ttrpc, adapters/nri frames it)."""
    outputs = [NRI_GENERATED / name for name in ("nri_pb2.py", "ttrpc_pb2.py", "__init__.py")]
    newest = max(p.stat().st_mtime for p in NRI_PROTOS)
    if all(p.exists() and p.stat().st_mtime >= newest for p in outputs):
        return
    NRI_GENERATED.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-Iadapters/nri/generated={NRI_PROTOS[0].parent}",
            f"--python_out={ROOT / 'src'}",
            f"--pyi_out={ROOT / 'src'}",
            *map(str, NRI_PROTOS),
        ],
        check=True,
    )
    (NRI_GENERATED / "__init__.py").touch()


def build_ns_helper() -> None:
    """The static C helper that pins pod namespaces and starts the infra process (as in the Makefile)."""
    source = NS_HELPER.with_suffix(".c")
    if NS_HELPER.exists() and NS_HELPER.stat().st_mtime >= source.stat().st_mtime:
        return
    compiler = shlex.split(os.environ.get("CC", "cc"))
    subprocess.run(
        [*compiler, "-O2", "-static", "-s", "-Wall", "-Wextra", "-Werror", "-o", str(NS_HELPER), str(source)],
        check=True,
    )


generate()
generate_nri()
build_ns_helper()
setup()
