"""A network namespace with servers listening on its loopback only, for port-forward tests (root)."""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ECHO_SERVER = r"""
import socket, sys, threading
def serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data.upper())
listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def free_host_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PodNetns:
    """`ip netns add pcstream-<random>`, lo up, an uppercasing echo server and busybox httpd inside."""

    def __init__(self) -> None:
        self.name = f"pcstream-{secrets.token_hex(4)}"
        self.path = f"/run/netns/{self.name}"
        # Ports that are free on the host too, so reaching them proves the forward entered the namespace.
        self.echo_port = free_host_port()
        self.http_port = free_host_port()
        self.closed_port = free_host_port()
        self.docroot = Path(tempfile.mkdtemp(prefix="pcstream-www-"))
        self.page = b"hello from the pod\n" * 1000
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> "PodNetns":
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
            echo = subprocess.Popen(
                ["ip", "netns", "exec", self.name, sys.executable, "-c", ECHO_SERVER, str(self.echo_port)],
                stdout=subprocess.PIPE,
            )
            self._processes.append(echo)
            assert echo.stdout is not None and echo.stdout.readline() == b"ready\n"
            (self.docroot / "index.html").write_bytes(self.page)
            httpd = subprocess.Popen(
                [
                    *("ip", "netns", "exec", self.name, "busybox", "httpd", "-f"),
                    *("-p", f"127.0.0.1:{self.http_port}", "-h", str(self.docroot)),
                ]
            )
            self._processes.append(httpd)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self._processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        subprocess.run(["ip", "netns", "delete", self.name], check=False)
        for entry in self.docroot.iterdir():
            entry.unlink()
        os.rmdir(self.docroot)
