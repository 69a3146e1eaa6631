"""Generates the CRI gRPC modules from proto/ before setuptools collects packages, so that a wheel built
with `pip install .` or `pip wheel .` contains them (grpcio-tools is a build requirement in
pyproject.toml). `make proto` runs the same command for a development checkout."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PROTO = ROOT / "proto" / "runtime" / "v1" / "api.proto"
GENERATED = ROOT / "src" / "adapters" / "cri" / "generated"


def generate() -> None:
    outputs = [GENERATED / name for name in ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py", "__init__.py")]
    if all(p.exists() and p.stat().st_mtime >= PROTO.stat().st_mtime for p in outputs):
        return
    GENERATED.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-Iadapters/cri/generated={PROTO.parent}",
            f"--python_out={ROOT / 'src'}", f"--pyi_out={ROOT / 'src'}", f"--grpc_python_out={ROOT / 'src'}",
            str(PROTO),
        ],
        check=True,
    )
    (GENERATED / "__init__.py").touch()


generate()
setup()
