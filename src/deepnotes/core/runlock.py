"""One writer per run directory: an exclusive advisory lock on ``RUN_DIR/.lock``.

The lock is an ``flock`` held on an open file, so the operating system releases it when the
process ends in any way (exit, exception, SIGKILL): a lock file left behind by a dead process is
stale by construction and the next writer takes it. The file records the holder's process id so
that a refused writer can say who holds the directory.

Example
-------
>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with RunLock(folder):
...     pass
"""

from __future__ import annotations

import os
from pathlib import Path

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; the lock is then advisory only
    fcntl = None


class RunDirectoryBusyError(ValueError):
    """Another process is writing into the run directory."""


class RunLock:
    """Hold ``folder/.lock`` exclusively; :class:`RunDirectoryBusyError` if another process does."""

    FILENAME = ".lock"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / self.FILENAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "another process"
                os.close(fd)
                raise RunDirectoryBusyError(
                    f"run directory {str(self.folder)!r} is in use by process {holder}; "
                    "wait for it to finish or choose another output folder"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_writable_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Check that ``path`` is (or can become) a folder we can write into; ``ValueError`` otherwise.

    Run before any work starts, so that a bad output location is found at once, not after
    minutes of training or measuring. Nothing is created: a missing folder is judged by its
    nearest existing ancestor.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    probe = path
    while not probe.exists():  # the nearest existing ancestor must be a writable folder
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{what} {str(path)!r} lies under {str(probe)!r}, which is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: {str(probe)!r} is not writable")
    # os.access says yes to root on a read-only file system: write a probe file for real, in the
    # folder itself or in its nearest existing ancestor (nothing is created that stays behind)
    probe_file = probe / f".write-test-{os.getpid()}"
    try:
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r} is not writable: {exc.strerror or exc}") from None
    return path
