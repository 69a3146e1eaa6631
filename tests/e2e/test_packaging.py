"""`pip install .` into a fresh venv from a checkout without generated code, then `pycrio` works: the wheel
builds the CRI gRPC modules from proto/ and the namespace helper from its C source, and installs no
test-only package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import connect, wait_for_socket
from tests.e2e.daemon import REPO


def _checkout_copy(into: Path) -> Path:
    """The repository's files as a fresh clone has them: tracked and new, nothing ignored or generated."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    for name in listed:
        source = REPO / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    assert not (into / "src" / "adapters" / "cri" / "generated").exists()
    assert not (into / "src" / "adapters" / "namespaces" / "pycrio-ns").exists()
    return into


def test_pip_install_then_pycrio_serves(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(checkout)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    pycrio = str(venv / "bin" / "pycrio")

    version = subprocess.run(
        [pycrio, "version"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("Version:")
    # The test-only packages stay out of a daemon install.
    for module in ("pyroute2", "pytest", "testcontainers"):
        probe = subprocess.run(
            [str(venv / "bin" / "python"), "-c", f"import {module}"],
            capture_output=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )
        assert probe.returncode != 0, f"{module} was installed"

    (tmp_path / "pycrio.toml").write_text("")
    socket = tmp_path / "run" / "pycrio.sock"
    args = [
        pycrio,
        "--config",
        str(tmp_path / "pycrio.toml"),
        "--set",
        f'grpc.listen="unix://{socket}"',
        "--set",
        f'runtime.root="{tmp_path / "root"}"',
        "--set",
        f'runtime.run_dir="{tmp_path / "run"}"',
    ]
    with (tmp_path / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        wait_for_socket(socket)
        client = connect(socket)
        assert client.runtime.Version(pb.VersionRequest()).runtime_name == "pycrio"
        client.close()
    finally:
        daemon.terminate()
        assert daemon.wait(60) == 0, (tmp_path / "daemon.log").read_text()
