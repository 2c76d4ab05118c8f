"""Folders and temporary files: is an output folder writable, why did a write fail, and the
``.part`` files that a killed writer left behind (:func:`~.images.atomic_write` names them
``.<name>.<pid>-<hex>.part``)."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

from .errors import OutputFolderError


def check_output_folder(folder: str | Path, *, create: bool = True, what: str = "output folder") -> Path:
    """Make sure files can be written into ``folder`` before any work starts.

    With ``create`` the folder (and its parents) is made; without, nothing is left behind and
    the nearest existing parent is checked instead. Either way a temporary file is created and
    removed there. Raises :class:`~.errors.OutputFolderError` naming the folder and the reason
    (a path under a file, a read-only file system, no permission, a full disk).
    """
    folder = Path(folder).expanduser()
    probe_dir = folder
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not probe_dir.exists() and probe_dir.parent != probe_dir:
                probe_dir = probe_dir.parent
        if not probe_dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(probe_dir))
        fd, tmp = tempfile.mkstemp(prefix=".lesson7-write-check-", suffix=".part", dir=probe_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise OutputFolderError(folder, os_error_reason(err, folder), what) from None
    return folder


def os_error_reason(err: OSError, path: Path) -> str:
    """A short, human reason for an OSError met while writing under ``path``."""
    code = err.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return "the disk is full"
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code in (errno.ENOTDIR, errno.EEXIST):
        where = err.filename or path
        return f"{where} is a file, not a folder"
    return err.strerror or str(err)


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def remove_stale_parts(folder: str | Path) -> list[Path]:
    """Delete the temporary files that writers killed in :func:`atomic_write` left in
    ``folder`` (top level): ``.<name>.<pid>-<hex>.part`` of processes no longer alive (and
    ``.*.part`` files with no process id). Returns what was removed."""
    removed = []
    try:
        stale = [p for p in Path(folder).glob(".*.part") if p.is_file()]
    except OSError:
        return removed
    for p in stale:
        found = re.search(r"\.(\d+)(?:-[0-9a-f]+)?\.part$", p.name)
        if found and _writer_alive(int(found.group(1))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
