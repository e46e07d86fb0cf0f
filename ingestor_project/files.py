"""The data directory's permissions: only the service's own user reads what it keeps there."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIRECTORY = 0o700


def private_directory(path: Path) -> None:
    """Create ``path`` as 0700, or narrow it to 0700 if it is ours (a data directory made by an
    earlier version, or a container's tmpfs mounted 0750)."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 != PRIVATE_DIRECTORY:
        path.chmod(PRIVATE_DIRECTORY)
