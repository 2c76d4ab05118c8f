"""Files are never half-written: a temporary file in the same folder, renamed when complete.

The temp name is ``.<name>.<pid>-<hex>.part`` (folder walkers skip it; :func:`~..files.remove_stale_parts`
deletes those a killed writer left behind).
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; rename it onto ``path`` on success.

    The temp name starts with '.' and ends with '.part' (so folder walkers skip it); it is
    removed if the block raises. The parent folder is created if needed. Writers must name
    the format explicitly (the temp suffix is '.part').
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """An open binary file whose bytes land at ``path`` only once the block ends without an
    error: written to an :func:`atomic_write` temp file, flushed, fsynced, then renamed.
    Any writer that takes a file object fits (``torch.save(obj, f)``, ``f.write(data)``)."""
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename)."""
    with atomic_open(path) as f:
        f.write(data)
