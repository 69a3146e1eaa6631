"""The wheel's runtime dependencies are exactly what the daemon's code imports (tests' packages are dev
extras, tracing's an optional extra)."""

import ast
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
# Distribution name -> the top-level module it provides.
MODULES = {
    "grpcio": "grpc",
    "protobuf": "google",
    "dependency-injector": "dependency_injector",
    "prometheus-client": "prometheus_client",
    "tomli-w": "tomli_w",
    "pyyaml": "yaml",
    "opentelemetry-sdk": "opentelemetry",
    "opentelemetry-exporter-otlp-proto-grpc": "opentelemetry",
}


def _distribution(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement


def _imported_third_party() -> set[str]:
    local = {p.name for p in SRC.iterdir() if p.is_dir()}
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "generated" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {name.split(".")[0] for name in names}
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


def test_runtime_dependencies_are_what_the_daemon_imports() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {MODULES.get(d, d) for d in map(_distribution, project["dependencies"])}
    tracing = {MODULES.get(d, d) for d in map(_distribution, project["optional-dependencies"]["tracing"])}
    assert _imported_third_party() == runtime | tracing
    assert "pyroute2" not in runtime
