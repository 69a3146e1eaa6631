"""A private registry for the bench: Debian's `docker-registry` on 127.0.0.1, fed over the distribution API.

Pushing is plain HTTP: HEAD a blob, else POST an upload and PUT it whole with its digest, then PUT the
manifest under its tag. The registry keeps its storage in the run's temp dir, so it goes with the run.
"""

import json
import socket
import subprocess
import time
from pathlib import Path

import httpx

from adapters.process.runner import spawn
from bench.images import ImageArtifact


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def registry_config(storage: Path, port: int) -> str:
    """The registry's YAML config, written as JSON (which YAML reads)."""
    document = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    return json.dumps(document, indent=1)


class LocalRegistry:
    def __init__(self, workdir: Path, binary: str = "/usr/bin/docker-registry", port: int = 0) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(timeout=120.0)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    def reference(self, image: ImageArtifact) -> str:
        return f"{self.host}/{image.repository}:{image.tag}"

    def start(self, wait: float = 15.0) -> "LocalRegistry":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "registry.yml"
        config.write_text(registry_config(self.workdir / "storage", self.port))
        log = (self.workdir / "registry.log").open("ab")
        self.process = spawn([self.binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log()}")
            try:
                if self._http.get(f"{self.base_url}/v2/").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not answer on {self.host}: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.workdir / "registry.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def push(self, image: ImageArtifact) -> str:
        """Upload the blobs the registry lacks and tag the manifest; returns the image reference."""
        name = image.repository
        for blob in image.blobs():
            head = self._http.head(f"{self.base_url}/v2/{name}/blobs/{blob.digest}")
            if head.status_code == 200:
                continue
            started = self._http.post(f"{self.base_url}/v2/{name}/blobs/uploads/")
            _expect(started, 202)
            location = httpx.URL(self.base_url).join(started.headers["Location"])
            finished = self._http.put(
                location.copy_merge_params({"digest": blob.digest}),
                content=blob.path.read_bytes(),
                headers={"Content-Type": "application/octet-stream"},
            )
            _expect(finished, 201)
        tagged = self._http.put(
            f"{self.base_url}/v2/{name}/manifests/{image.tag}",
            content=image.manifest,
            headers={"Content-Type": json.loads(image.manifest)["mediaType"]},
        )
        _expect(tagged, 201)
        return self.reference(image)

    def stop(self) -> None:
        self._http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"registry {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
