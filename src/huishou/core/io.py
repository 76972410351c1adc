"""File I/O at the edges: outputs published whole, a lock per output, content hashes.

A leaf: imports nothing of the project but its errors.

Every stage output is a *publication unit* (a folder, or a single file) written into a fresh
temporary sibling and switched into place in one step: a folder with Linux's
`renameat2(RENAME_EXCHANGE)` (both names always exist; where the call is missing, two renames and a
recovery that completes or undoes an interrupted switch on the next run), a file with `os.replace`.
A crash, a kill -9 or a failed write at any moment leaves the previous result intact, never a mix
of old and new files; temporary leftovers of killed runs are removed by the next run. Each unit has
a lock (an flock through `filelock`, released by the kernel when the holder dies), so a second run
writing the same output refuses at once instead of silently winning.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import pandas as pd

from huishou.core.errors import BusyError

_UMASK = os.umask(0)
os.umask(_UMASK)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_CARRIED = (".gitignore",)  # kept inside output folders by DVC, not by the stage: carried over
_LIBC = ctypes.CDLL(None, use_errno=True)


# ---------------------------------------------------------------- single files


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


class ParquetAppender:
    """Tables written chunk by chunk, one parquet file each (a row group per chunk), so a table larger
    than memory can be written from chunks that fit. Every chunk is cast to the first chunk's schema.
    Write into a publication unit's temporary folder: the files are complete only after `close`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._writers: dict[str, Any] = {}

    def write(self, name: str, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = self._writers.get(name)
        table = pa.Table.from_pandas(frame, preserve_index=False, schema=writer.schema if writer else None)
        if writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            writer = self._writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema)
        writer.write_table(table)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def write_json(obj: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def _map_floats(obj: Any, fn) -> Any:
    """`obj` (dicts, lists and tuples of them, nested) with `fn` applied to every float."""
    if isinstance(obj, dict):
        return {k: _map_floats(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_map_floats(v, fn) for v in obj]
    if isinstance(obj, float):
        return fn(obj)
    return obj


def rounded(obj: Any, digits: int = 4) -> Any:
    """`obj` with every float rounded (DVC metrics: differences in the 16th digit are not changes)."""
    return _map_floats(obj, lambda x: round(x, digits))


def significant(obj: Any, digits: int = 6) -> Any:
    """`obj` with every float kept to `digits` significant digits: for metrics whose magnitudes range from
    shares to millions, where another CPU's math library may change the last bits of a sum (numpy picks its
    SIMD loops by CPU), so that a rerun elsewhere writes the same bytes."""
    return _map_floats(obj, lambda x: float(f"{x:.{digits}g}") if math.isfinite(x) else x)


def write_text(text: str, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def plain(value: Any) -> Any:
    """Numpy and pandas scalars as plain Python (None for missing); anything else as it is."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- hashes


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes: the same hash DVC records for a file output."""
    return _digest(hashlib.md5(), path, chunk)


def path_md5(path: str | Path) -> str:
    """`file_md5` of a file; of a folder (a dataset of parts), the MD5 of its files' relative paths and MD5s,
    sorted, with DVC's `.dir` suffix (so a changed, added or removed part changes it)."""
    path = Path(path)
    if not path.is_dir():
        return file_md5(path)
    listing = "".join(
        f"{p.relative_to(path).as_posix()}\t{file_md5(p)}\n" for p in sorted(path.rglob("*")) if p.is_file()
    )
    return hashlib.md5(listing.encode()).hexdigest() + ".dir"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (model artifacts are verified with it before they are read)."""
    return _digest(hashlib.sha256(), path, chunk)


def _digest(digest, path: str | Path, chunk: int) -> str:
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def dir_md5(path: str | Path, pattern: str = "*.parquet") -> dict[str, str]:
    """MD5 of every matching file under a folder, keyed by relative name."""
    root = Path(path)
    return {p.relative_to(root).as_posix(): file_md5(p) for p in sorted(root.rglob(pattern))}


# ---------------------------------------------------------------- publication units


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the kernel or file system cannot."""
    fn = getattr(_LIBC, "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no exchange here
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _recover(target: Path) -> None:
    """Finish the work of an interrupted run (caller holds the lock): restore an old version left
    by an interrupted two-rename switch, remove temporary folders and files."""
    old = sorted(target.parent.glob(f".{target.name}.old-*"))
    if old and not target.exists():
        os.replace(old[-1], target)
        old = old[:-1]
    for leftover in [*old, *target.parent.glob(f".{target.name}.tmp-*")]:
        _remove(leftover)


def _switch(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
    elif new.is_dir() and target.is_dir() and _exchange(new, target):
        return  # `new` now holds the previous version; the caller removes it
    elif new.is_dir():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)  # a crash here leaves `old` only: _recover puts it back
        os.replace(new, target)
        _remove(old)
    else:
        os.replace(new, target)


def _carry_over(old: Path, new: Path) -> None:
    """Copy DVC's .gitignore files (at any depth) from the old version into the new one."""
    for name in _CARRIED:
        for path in old.rglob(name):
            dest = new / path.relative_to(old)
            if path.is_file() and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


@contextlib.contextmanager
def output_lock(target: str | Path, what: str = "huishou") -> Iterator[None]:
    """Hold the lock of one output for the block; refuse (BusyError) if another run holds it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(_lock_path(target), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BusyError(
            f"{target}: another {what} run is writing it right now (lock {_lock_path(target)}); "
            "wait for it to finish, then run again"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def publish(target: str | Path, *, kind: str = "dir", what: str = "huishou") -> Iterator[Path]:
    """Write one publication unit: yields a fresh temporary folder (kind "dir") or file path (kind
    "file") beside `target`; when the block succeeds it replaces `target` in one step, when it fails
    the temporary is removed and `target` is untouched. Takes the output's lock for the block.
    """
    target = Path(target)
    with output_lock(target, what):
        _recover(target)
        if kind == "dir":
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            os.chmod(tmp, 0o777 & ~_UMASK)
        else:
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~_UMASK)
        try:
            yield tmp
            if kind == "dir" and target.is_dir():
                _carry_over(target, tmp)
            _switch(tmp, target)
        finally:
            _remove(tmp)
