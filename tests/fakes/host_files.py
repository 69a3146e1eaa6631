"""HostFiles over a dict of paths: symlinks, devices and file contents the test declares."""

from domain.errors import InvalidArgument
from domain.oci_spec import HostDevice
from ports.host_files import MAX_TEXT_FILE


class FakeHostFiles:
    def __init__(
        self,
        paths: dict[str, str] | None = None,
        devices: dict[str, HostDevice] | None = None,
        files: dict[str, str | bytes] | None = None,
        specials: set[str] | None = None,
    ) -> None:
        self.paths = paths or {}  # path -> what it resolves to (itself when not a symlink)
        self.devices = devices or {}
        self.files = files or {}
        self.specials = specials or set()  # paths that exist but are no regular file (FIFO, device)
        self.removed: list[str] = []  # what remove_if_empty was asked to remove, in order

    def resolve(self, path: str) -> str | None:
        return self.paths.get(path)

    def device(self, path: str) -> HostDevice | None:
        return self.devices.get(self.paths.get(path, path))

    def all_devices(self) -> tuple[HostDevice, ...]:
        return tuple(sorted(self.devices.values(), key=lambda d: d.path))

    def read_text(self, path: str) -> str | None:
        if path in self.specials:
            raise InvalidArgument(f"{path}: not a regular file")
        content = self.files.get(path)
        if content is None:
            return None
        data = content.encode() if isinstance(content, str) else content
        if len(data) > MAX_TEXT_FILE:
            raise InvalidArgument(f"{path}: {len(data)} bytes, more than the {MAX_TEXT_FILE} allowed")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"{path}: not UTF-8 text") from None

    def remove_if_empty(self, path: str) -> None:
        self.removed.append(path)
        if not any(other.startswith(path + "/") for other in self.paths) and not self.files.get(path):
            self.paths.pop(path, None)
