"""Reading the image's files from a container rootfs: symlinks stay inside the rootfs."""

from pathlib import Path

from adapters.containers.image_rootfs import _resolve_in_root


def test_absolute_and_relative_links_resolve_inside_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr" / "share").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr" / "share" / "passwd").write_text("inside")
    (root / "etc" / "passwd").symlink_to("/usr/share/passwd")
    (root / "etc" / "group").symlink_to("../usr/share/passwd")
    assert _resolve_in_root(root, "/etc/passwd") == root / "usr" / "share" / "passwd"
    assert _resolve_in_root(root, "/etc/group") == root / "usr" / "share" / "passwd"


def test_links_cannot_escape_to_the_host(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("host file")
    (root / "etc" / "passwd").symlink_to("../../secret")
    (root / "etc" / "shadow").symlink_to(str(tmp_path / "secret"))
    assert _resolve_in_root(root, "/etc/passwd") is None  # /secret inside the rootfs does not exist
    assert _resolve_in_root(root, "/etc/shadow") is None
    assert _resolve_in_root(root, "/../../secret") is None
