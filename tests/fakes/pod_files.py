"""In-memory pod files: the contents each sandbox would have on disk."""

import threading

from ports.pod_files import PodFileContents, PodFilePaths

NODE_HOSTS = "127.0.0.1\tlocalhost\n"
NODE_RESOLV_CONF = "nameserver 192.0.2.53\n"


class FakePodFiles:
    def __init__(self, root: str = "/fake/run/pods") -> None:
        self._root = root
        self._lock = threading.Lock()
        self.files: dict[str, dict[str, str]] = {}
        self.shm_mounts: set[str] = set()
        self.log_directories: set[str] = set()
        self.contents: dict[str, PodFileContents] = {}  # the last write of each pod
        # The directories the real adapter would have made: removed with the pod.
        self._made: dict[str, str] = {}

    def write(self, sandbox_id: str, contents: PodFileContents) -> PodFilePaths:
        base = f"{self._root}/{sandbox_id}"
        paths = PodFilePaths(
            hostname=f"{base}/hostname",
            hosts=f"{base}/hosts",
            resolv_conf=f"{base}/resolv.conf",
            shm=f"{base}/shm" if contents.private_shm else "/dev/shm",
        )
        with self._lock:
            self.files[sandbox_id] = {
                paths.hostname: contents.hostname + "\n",
                paths.hosts: contents.hosts if contents.hosts is not None else NODE_HOSTS,
                paths.resolv_conf: (
                    contents.resolv_conf if contents.resolv_conf is not None else NODE_RESOLV_CONF
                ),
            }
            self.contents[sandbox_id] = contents
            if contents.private_shm:
                self.shm_mounts.add(paths.shm)
            if contents.log_directory and contents.log_directory not in self.log_directories:
                self.log_directories.add(contents.log_directory)
                self._made[sandbox_id] = contents.log_directory
        return paths

    def read(self, path: str) -> str:
        with self._lock:
            for files in self.files.values():
                if path in files:
                    return files[path]
        raise FileNotFoundError(path)

    def remove(self, sandbox_id: str) -> None:
        with self._lock:
            self.files.pop(sandbox_id, None)
            self.shm_mounts.discard(f"{self._root}/{sandbox_id}/shm")
            made = self._made.pop(sandbox_id, None)
            if made is not None:
                self.log_directories.discard(made)
