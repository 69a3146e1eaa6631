"""The idle daemon's memory (docs/bench.md, "daemon RSS idle"): libraries that only a pull, a signature or a
metrics scrape needs are imported when that first happens, never at start-up."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What start-up and the calls a kubelet makes first must not load (each costs the idle daemon MiBs).
LOADED_LATER = (
    "cryptography",
    "httpx",
    "prometheus_client",
    "opentelemetry",
    "isal",
    "zstandard",
    "tarfile",
    "tomli_w",
    "yaml",  # dependency-injector would import it at start-up (app/di.py); registries.d files need it
    "decimal",  # bandwidth annotations (domain/quantity.py)
    "pty",  # an exec with a terminal
    "tty",
)
# Modules (and their submodules) that wait for their first use: the streaming protocols (the first Exec,
# Attach or PortForward connection), the default seccomp profile (the first container that uses it), NRI
# (off by default), the signature policy code (the first pull), protobuf's JSON mapping (a verbose status).
MODULES_LOADED_LATER = (
    "adapters.streaming.spdy",
    "adapters.streaming.websocket",
    "adapters.streaming.remotecommand",
    "adapters.streaming.portforward",
    "domain.seccomp_default",
    "adapters.nri",
    "domain.trust",
    "domain.registries_d",
    "adapters.trust",
    "google.protobuf.json_format",
)


def test_start_up_and_first_calls_load_no_pull_or_signature_library(tmp_path: Path) -> None:
    script = f"""
import sys
from pathlib import Path
import app.main  # the daemon's entry point and everything it imports
from app.config import load
from app.container import make_container
from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import connect
config = load(None, overrides=['grpc.listen="unix://{tmp_path}/cri.sock"', 'runtime.root="{tmp_path}/root"',
                                'runtime.run_dir="{tmp_path}/run"'])
server = make_container(config).server()
server.start()
client = connect(Path("{tmp_path}/cri.sock"))
client.runtime.Version(pb.VersionRequest())
client.runtime.Status(pb.StatusRequest())
client.runtime.ListPodSandbox(pb.ListPodSandboxRequest())
client.runtime.ListContainers(pb.ListContainersRequest())
client.image.ListImages(pb.ListImagesRequest())
client.image.ImageFsInfo(pb.ImageFsInfoRequest())
client.close()
server.stop(1)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({LOADED_LATER!r}))
loaded += sorted(m for m in sys.modules if m.startswith({MODULES_LOADED_LATER!r}))
print("loaded:", loaded)
import yaml  # hidden only while dependency-injector was imported (app/di.py): a pull can still load it
assert yaml.safe_load("a: 1") == {{"a": 1}}
sys.exit(1 if loaded else 0)
"""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{REPO}")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
