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
NRI_PROTOS = [ROOT / "proto" / "nri" / "nri.proto", ROOT / "proto" / "nri" / "ttrpc.proto"]
NS_HELPER = ROOT / "src" / "adapters" / "namespaces" / "pycrio-ns"


def generate(protos: list[Path], package: str, outputs: list[str], grpc_stubs: bool) -> None:
    """protoc's Python modules (and `.pyi`) for `protos` into src/`package`, unless they are newer than
    every proto; with `grpc_stubs`, gRPC's service stubs too."""
    target = ROOT / "src" / package
    newest = max(p.stat().st_mtime for p in protos)
    made = [target / name for name in [*outputs, "__init__.py"]]
    if all(path.exists() and path.stat().st_mtime >= newest for path in made):
        return
    target.mkdir(parents=True, exist_ok=True)
    src = ROOT / "src"
    stubs = [f"--grpc_python_out={src}"] if grpc_stubs else []
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{package}={protos[0].parent}",
            f"--python_out={src}", f"--pyi_out={src}", *stubs, *map(str, protos),
        ],
        check=True,
    )  # fmt: skip
    (target / "__init__.py").touch()


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


generate([PROTO], "adapters/cri/generated", ["api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py"], grpc_stubs=True)
# NRI speaks ttrpc (framed by adapters/nri), so its messages and the ttrpc envelope need no gRPC stubs.
generate(NRI_PROTOS, "adapters/nri/generated", ["nri_pb2.py", "ttrpc_pb2.py"], grpc_stubs=False)
build_ns_helper()
setup()
