"""Where ClawFleet keeps its files by default and what they are called (shared by the server
and the CLI; kept free of heavy imports, so the CLI can start without loading the settings)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DEFAULT_PORT = 7420
DEFAULT_DATA_DIR = Path("~/.clawfleet")
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name
DATABASE_FILE = "clawfleet.db"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed and return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def tighten_private_dir(path: Path) -> list[str]:
    """Create ``path`` (0700) if needed, and take group and other access away from it and from
    what lies directly in it, so a data dir made by hand or by an older version holds no
    readable database or key (a 0644 file becomes 0600, a 0755 directory 0700). Only the top
    level: deeper down are the instances' workspaces, out of reach once their parent is 0700.
    Returns what it changed (``"clawfleet.db 0644 -> 0600"``), for one log line."""
    ensure_private_dir(path)
    changed = []
    for entry in [path, *sorted(path.iterdir())]:
        info = entry.lstat()
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode) or not mode & 0o077:
            continue  # a symlink's own mode does not matter
        os.chmod(entry, mode & 0o700)
        name = str(entry) if entry == path else entry.name
        changed.append(f"{name} {mode:04o} -> {mode & 0o700:04o}")
    return changed


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` so that only the owner can ever read it (no window with wider mode)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_private_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return None
