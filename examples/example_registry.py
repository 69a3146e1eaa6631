"""The README quickstart's image, served from a local registry: this kind of machine has no internet.

Builds `examples/busybox:latest` from the host's busybox (sh, echo, cat, hostname, httpd, sleep, ...),
starts Debian's `docker-registry` on 127.0.0.1:5000 (unless a registry already answers there), pushes
the image, and marks the registry insecure (plain HTTP) with a registries.conf drop-in.
On a node with internet access, `docker.io/library/busybox:latest` does the same job.

    python -m examples.example_registry [--port 5000] [--dir /var/lib/pycrio-example-registry]
"""

import argparse
from pathlib import Path

import httpx

from bench.images import build, busybox_spec
from bench.registry import LocalRegistry

REPOSITORY, TAG = "examples/busybox", "latest"
APPLETS = ("sh", "echo", "cat", "hostname", "httpd", "sleep", "ls", "ps", "true", "wget")


def publish(registry: LocalRegistry, cache_dir: Path) -> str:
    """Build the quickstart image (cached) and push it; returns its reference."""
    image = build(busybox_spec(repository=REPOSITORY, tag=TAG, applets=APPLETS), cache_dir)
    return registry.push(image)


def insecure_drop_in(host: str) -> str:
    return f'[[registry]]\nlocation = "{host}"\ninsecure = true\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=Path("/var/lib/pycrio-example-registry"))
    parser.add_argument("--registries-conf-dir", type=Path, default=Path("/etc/containers/registries.conf.d"))
    args = parser.parse_args()
    registry = LocalRegistry(args.dir, port=args.port)
    try:
        running = httpx.get(f"{registry.base_url}/v2/", timeout=5).status_code == 200
    except httpx.TransportError:
        running = False
    if not running:
        registry.start()
        assert registry.process is not None
        print(f"registry: serving {registry.host} (pid {registry.process.pid}, data in {args.dir})")
    reference = publish(registry, args.dir / "build-cache")
    args.registries_conf_dir.mkdir(parents=True, exist_ok=True)
    (args.registries_conf_dir / "50-pycrio-example.conf").write_text(insecure_drop_in(registry.host))
    print(f"registry: pushed {reference}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
