"""HDF5 results store: points keyed by a content hash of their inputs, with provenance.

Crash safety: HDF5 files are not safe against a kill in the middle of an in-place write (a
half-flushed metadata cache leaves an unreadable file), so the main file is never modified
in place. A writer stores each point at once as its own small HDF5 file in `<file>.pending/`
(written under a temporary name, then renamed: a point is there completely or not at all),
and folds the pending points into the main file by copy-on-write (copy, append, atomic
rename) at checkpoints, at close, and when it reopens a file a killed writer left behind.
`read_points` and `Store` see the pending points too; plain h5py sees the main file.
The layout is described in docs/reference/file-formats.md.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from circuitsim import __version__
from circuitsim.errors import (
    StoreCorruptError,
    StoreDamageWarning,
    StoreError,
    StoreLockedError,
    StoreVersionError,
)

FORMAT = "circuitsim-store"
FORMAT_VERSION = 1
COMPRESS_MIN_ELEMENTS = 1024  # arrays at least this big are chunked and gzip-compressed
GROUPS = ("inputs", "outputs", "provenance")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# ---- values <-> HDF5 -------------------------------------------------------------------

def _leaf(path: str, value) -> np.ndarray:
    """A storable numpy value (numbers, booleans, strings, or arrays of them)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return arr.astype(object)
    if arr.dtype.kind not in "biufc" and not (arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr.flat)):
        raise TypeError(f"{path}: cannot store a value of type {type(value).__name__} "
                        "(numbers, booleans, strings, arrays of them, or dicts of those)")
    return arr


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{'a/b': array} from nested dicts; None values are left out (absent)."""
    if not isinstance(tree, dict):
        raise TypeError(f"{prefix or 'value'} must be a dict, got {type(tree).__name__}")
    out = {}
    for name, value in tree.items():
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{prefix}{name!r}: names must be non-empty strings without '/'")
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "/"))
        elif value is not None:
            out[path] = _leaf(path, value)
    return out


def point_key(inputs: dict) -> str:
    """Content hash (sha256 hex) of a point's inputs: the same inputs always give the same key.

    Integers and floats hash alike (8 and 8.0 are the same input)."""
    digest = hashlib.sha256()
    for path, arr in sorted(_flatten(inputs).items()):
        if arr.dtype.kind in "iuf":
            arr = arr.astype("<f8")
        digest.update(f"{path}|{arr.dtype.kind}|{arr.shape}|".encode())
        digest.update("\0".join(arr.ravel()).encode() if arr.dtype.kind == "O" else np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _write_tree(group: h5py.Group, flat: dict[str, np.ndarray]) -> None:
    for path, arr in flat.items():
        if arr.dtype.kind == "O":
            group.create_dataset(path, data=arr, dtype=h5py.string_dtype())
        elif arr.size >= COMPRESS_MIN_ELEMENTS:
            group.create_dataset(path, data=arr, chunks=True, compression="gzip", compression_opts=4, shuffle=True)
        else:
            group.create_dataset(path, data=arr)


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    """{'a/b': value} of every dataset under `group` (strings decoded, 0-d as scalars)."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj.asstr()[()] if h5py.check_string_dtype(obj.dtype) else obj[()]

    group.visititems(visit)
    return out


def _point_status(group) -> str:
    """A point's status ("ok" or "failed"), or StoreCorruptError naming the file and the point."""
    where = f"{group.file.filename}: point {group.name.rsplit('/', 1)[-1]}"
    if not isinstance(group, h5py.Group):
        raise StoreCorruptError(f"{where} is a {type(group).__name__}, not a group: the file is damaged or "
                                "was not written by circuitsim")
    status = group.attrs.get("status")
    if isinstance(status, bytes):
        status = status.decode(errors="replace")
    if status not in ("ok", "failed"):
        raise StoreCorruptError(f"{where} has " + ("no status attribute" if status is None else
                                                   f"status {status!r} (not 'ok' or 'failed')") +
                                ": the file is damaged or was not written by circuitsim")
    return status


def _read_point(group: h5py.Group) -> dict[str, Any]:
    """One point as a flat dict: 'status', 'error', 'written_unix_s' and 'inputs/...' etc."""
    flat = {"status": _point_status(group), "error": str(group.attrs.get("error", "")),
            "written_unix_s": float(group.attrs.get("written_unix_s", np.nan))}
    for name in GROUPS:
        if name in group:
            flat.update({f"{name}/{k}": v for k, v in _read_tree(group[name]).items()})
    return flat


# ---- files -----------------------------------------------------------------------------

def _pending_dir(path: Path) -> Path:
    return path.with_name(path.name + ".pending")


def _open_h5(path: Path, mode: str = "r") -> h5py.File:
    """Open a store file, turning h5py's errors into messages that say what is wrong."""
    try:
        f = h5py.File(path, mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such results file") from None
    except OSError as exc:
        raise StoreCorruptError(f"{path}: not a readable HDF5 file (truncated or damaged: {exc}). "
                                "circuitsim replaces its files atomically, so it was damaged elsewhere "
                                "(an interrupted copy or download?); restore it or start a new file") from None
    fmt, version = f.attrs.get("format"), f.attrs.get("format_version")
    if fmt != FORMAT or "points" not in f:
        f.close()
        raise StoreVersionError(f"{path}: an HDF5 file but not a circuitsim results store (no format={FORMAT!r})")
    if not isinstance(f["points"], h5py.Group):
        f.close()
        raise StoreCorruptError(f"{path}: 'points' is a dataset, not a group of points: the file is damaged or was "
                                "not written by circuitsim")
    if not isinstance(version, (int, np.integer)) or isinstance(version, (bool, np.bool_)):
        f.close()
        raise StoreVersionError(f"{path}: format_version is {version!r} ({type(version).__name__}), not an integer "
                                f"store format: the file is damaged or was not written by circuitsim")
    if version != FORMAT_VERSION:
        writer = f.attrs.get("circuitsim_version", "unknown")
        f.close()
        raise StoreVersionError(f"{path}: written by circuitsim {writer} in store format {version}; this circuitsim "
                                f"({__version__}) reads format {FORMAT_VERSION}. Use the circuitsim version that wrote "
                                "it, or start a new file")
    return f


def _pending_points(path: Path) -> dict[str, Path]:
    """{key: part file} of complete pending points (temporary files are incomplete)."""
    pending = _pending_dir(path)
    if not pending.is_dir():
        return {}
    return {p.stem: p for p in sorted(pending.glob("*.h5"))}


def _snapshot(path: Path, read) -> dict[str, Any]:
    """{key: read(point group)} over the main file and its pending points (pending win).

    Pending parts are read first: a part that vanished meanwhile was folded into the main
    file, which is opened afterwards and so already holds it."""
    out = {}
    for key, part in _pending_points(path).items():
        try:
            with h5py.File(part, "r") as f:
                out[key] = read(f["point"])
        except FileNotFoundError:
            continue
        except (OSError, KeyError, StoreCorruptError) as exc:
            warnings.warn(f"{part}: skipping a damaged pending point ({_one_line(exc)}); the next writer moves "
                          "it aside", StoreDamageWarning, stacklevel=3)
    with _open_h5(path) as f:
        for key, group in f["points"].items():
            out.setdefault(key, read(group))
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _quarantine(part: Path, exc: BaseException) -> None:
    """Move a damaged pending point to `<file>.damaged/` (kept for a person to look at) and warn."""
    damaged = part.parent.with_suffix(".damaged")
    damaged.mkdir(exist_ok=True)
    target = damaged / f"{part.stem}-{time.strftime('%Y%m%dT%H%M%S')}.h5"
    os.replace(part, target)
    warnings.warn(f"{part}: a damaged pending point ({_one_line(exc)}) was moved to {target}; it will be computed "
                  "again by the next sweep", StoreDamageWarning, stacklevel=4)


def _fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's) data to disk, so a rename after it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_atomically(path: Path, build) -> None:
    """Write `path` by calling build(h5py.File) on a copy (or a new file), then renaming it."""
    tmp = path.with_name(f".{path.name}.tmp")
    if path.exists():
        shutil.copyfile(path, tmp)
    try:
        with h5py.File(tmp, "r+" if path.exists() else "w") as f:
            build(f)
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except (OSError, RuntimeError) as exc:  # h5py raises either when the disk is full
        raise StoreError(f"could not write {path} ({_one_line(exc)}); it is left as it was") from None
    finally:
        tmp.unlink(missing_ok=True)


def _store_path(path: Path, writing: bool) -> Path:
    """The file a store path names, links resolved once (so a link is written through and two
    writers through two links share one lock); a one-line StoreError for what cannot be a store."""
    real = Path(os.path.realpath(path))
    shown = f"{path}" if real == path.absolute() else f"{path} (-> {real})"
    if real.is_dir():
        raise StoreError(f"{shown} is a folder; give the results file's name, such as {path / 'results.h5'}")
    if real.exists() and not real.is_file():
        raise StoreError(f"{shown} is not a regular file (a device or a pipe); give a results file's name (.h5)")
    if writing and not real.parent.is_dir():
        raise StoreError(f"cannot write the results file {shown}: the folder {real.parent} does not exist")
    return real


def _holds(fd: int, lock_path: Path) -> bool:
    """True if the file locked through fd is still the one at lock_path (not removed by a writer
    that closed after fd was opened)."""
    try:
        linked = os.stat(lock_path)
    except FileNotFoundError:
        return False
    locked = os.fstat(fd)
    return (linked.st_dev, linked.st_ino) == (locked.st_dev, locked.st_ino)


def _init_file(f: h5py.File) -> None:
    f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "circuitsim_version": __version__})
    f.create_group("points")


# ---- the store -------------------------------------------------------------------------

class Store:
    """A results file. mode "r": read; "a": read and append (created if missing); "w": new
    empty file (replaces an existing one). Writers hold an exclusive lock on `<file>.lock`
    (released when the process ends, even by kill -9; the file is removed at close); a second
    writer gets StoreLockedError.

    checkpoint_s: how often (at least) pending points are folded into the main file.
    """

    def __init__(self, path: Path, mode: str, checkpoint_s: float):
        self.path, self.mode, self.checkpoint_s = path, mode, checkpoint_s
        self._lock_fd: int | None = None
        self._status: dict[str, str] = {}
        self._last_commit = time.monotonic()
        self._commit_cost_s = 0.0

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", *, checkpoint_s: float = 30.0) -> Store:
        if mode not in ("r", "a", "w"):
            raise ValueError(f"mode must be 'r', 'a' or 'w', got {mode!r}")
        store = cls(_store_path(Path(path), writing=mode != "r"), mode, checkpoint_s)
        existed = store.path.exists()
        if mode != "r":
            store._lock()
        try:
            store._load()
        except BaseException:
            if not existed and mode != "r":  # a new file that could not be made: leave nothing behind
                shutil.rmtree(_pending_dir(store.path), ignore_errors=True)
            store._release()
            raise
        return store

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _lock(self) -> None:
        """Lock `<file>.lock`. A writer removes that file at close while it still holds the lock, so
        a lock won on a file that is no longer the one at that path (opened just before another
        writer closed) is no lock: try again on the path's current file (see _holds)."""
        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot write the results file {self.path}: {exc.strerror} in "
                                 f"{self.path.parent}; write it in a folder you can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown process"
                os.close(fd)
                raise StoreLockedError(f"{self.path} is being written by another process ({holder}); two sweeps "
                                       "cannot write one file at once: wait for it to finish or write another "
                                       "file") from None
            if _holds(fd, self._lock_path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._lock_fd = fd

    def _load(self) -> None:
        if self.mode != "w" and (self.mode == "r" or self.path.exists()):
            _open_h5(self.path).close()  # a clear error for a missing, foreign, old or damaged file
        if self.mode == "w" or (self.mode == "a" and not self.path.exists()):
            shutil.rmtree(_pending_dir(self.path), ignore_errors=True)
            self.path.unlink(missing_ok=True)
            _replace_atomically(self.path, _init_file)
        if self.mode != "r":
            for stale in _pending_dir(self.path).glob(".*.tmp"):
                stale.unlink()  # a part a killed writer did not finish
            self._commit()  # recover points a killed writer left pending
        self._status = _snapshot(self.path, _point_status)

    # -- queries
    def keys(self, status: str | None = None) -> list[str]:
        """Keys of all points, or of those with status "ok" / "failed"."""
        return [k for k, s in self._status.items() if status is None or s == status]

    def status(self, key: str) -> str | None:
        """"ok", "failed", or None for a point not in the store."""
        return self._status.get(key)

    def has(self, key: str) -> bool:
        return key in self._status

    def __len__(self) -> int:
        return len(self._status)

    def read(self, key: str) -> dict[str, Any]:
        """One point as a flat dict ('status', 'error', 'inputs/...', 'outputs/...', 'provenance/...')."""
        part = _pending_points(self.path).get(key)
        if part is not None:
            with h5py.File(part, "r") as f:
                return _read_point(f["point"])
        with _open_h5(self.path) as f:
            if key not in f["points"]:
                raise KeyError(f"{self.path}: no point {key}")
            return _read_point(f["points"][key])

    # -- writing
    def append(self, key: str | None, inputs: dict, outputs: dict | None = None, provenance: dict | None = None,
               error: str | None = None) -> str:
        """Store one point at once and return its key (default: point_key(inputs)).

        error: why the point failed (its outputs may then be empty). A failed point may be
        replaced by a later append of the same key; a stored good point may not."""
        if self._lock_fd is None:
            raise StoreError(f"{self.path} is open read-only (mode 'r')")
        key = point_key(inputs) if key is None else key
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"point key must be 1-128 letters, digits, '-' or '_', got {key!r}")
        if self._status.get(key) == "ok":
            raise ValueError(f"{self.path}: point {key} is already stored")
        trees = {name: _flatten(tree or {}, f"{name}/") for name, tree in zip(GROUPS, (inputs, outputs, provenance))}
        status = "ok" if error is None else "failed"
        # The part is built in memory and written with plain file I/O: a full disk is then a clean
        # OSError, where HDF5 writing to disk raised at close and could crash the process at exit.
        with h5py.File(f"{key}.h5", "w", driver="core", backing_store=False) as f:
            group = f.create_group("point")
            group.attrs.update({"status": status, "error": error or "", "written_unix_s": time.time()})
            for flat in trees.values():
                _write_tree(group, flat)
            f.flush()
            image = f.id.get_file_image()
        pending = _pending_dir(self.path)
        tmp = pending / f".{key}.tmp"
        try:
            pending.mkdir(exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(image)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, pending / f"{key}.h5")
            _fsync_path(pending)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{self.path}: could not write point {key[:12]} ({_one_line(exc)}); the points "
                             "stored before are kept") from None
        del image
        self._status[key] = status
        if time.monotonic() - self._last_commit >= max(self.checkpoint_s, 20 * self._commit_cost_s):
            self._commit()
        return key

    def _commit(self) -> None:
        """Fold the pending points into the main file (copy-on-write, atomic rename)."""
        parts = {}
        for key, part in _pending_points(self.path).items():
            try:
                with h5py.File(part, "r") as src:
                    _point_status(src["point"])
                parts[key] = part
            except (OSError, KeyError, StoreCorruptError) as exc:
                _quarantine(part, exc)
                self._status.pop(key, None)
        if parts:
            start = time.monotonic()

            def fold(f):
                points = f["points"]
                for key, part in parts.items():
                    with h5py.File(part, "r") as src:
                        if key in points:
                            if _point_status(points[key]) == "ok":
                                continue  # already folded in by a writer killed before it cleaned up
                            del points[key]
                        src.copy(src["point"], points, name=key)

            _replace_atomically(self.path, fold)
            for part in parts.values():
                part.unlink()
            self._commit_cost_s = time.monotonic() - start
        self._last_commit = time.monotonic()

    def close(self) -> None:
        """Fold pending points into the main file and release the lock."""
        if self._lock_fd is None:
            return
        try:
            self._commit()
            shutil.rmtree(_pending_dir(self.path), ignore_errors=True)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            self._lock_path.unlink(missing_ok=True)  # still locked: see _lock
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def all_points(path: str | Path) -> dict[str, dict[str, Any]]:
    """{key: point as a flat dict (see Store.read)} of every point, pending ones included."""
    return _snapshot(_store_path(Path(path), writing=False), _read_point)

