"""A results store as tables: every stored value per point (read_points), and tidy views for
pandas, seaborn and xarray users: one row per point with its parameters and scalar results
(to_dataframe), an array result in long form (to_long), or everything as an xarray Dataset
(to_xarray). See docs/guide/sweeps-and-store.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitsim.store.file import all_points

# Dimension names of the arrays circuitsim's sweeps store (first axis: the input vector)
DIMS = {"column_currents": ("vector", "col"), "row_currents": ("vector", "row"), "power": ("vector",),
        "cell_currents": ("vector", "row", "col"), "cell_voltages": ("vector", "row", "col"),
        "node_voltages": ("vector", "node")}
SUMMARIES = ("min", "mean", "max")  # what to_dataframe gives of each numeric array result
ALWAYS = {"provenance/wall_time_s": "wall_time_s", "provenance/engine": "engine"}


def _chosen(path: str | Path, status: str | None) -> list[tuple[str, dict[str, Any]]]:
    """(key, point) of the points with `status` (None: all), oldest first."""
    if status not in ("ok", "failed", None):
        raise ValueError(f"status must be 'ok', 'failed' or None, got {status!r}")
    points = all_points(path)
    return sorted(((k, p) for k, p in points.items() if status is None or p["status"] == status),
                  key=lambda kp: kp[1]["written_unix_s"])


def _column(values: list) -> np.ndarray:
    """Stack per-point values: a numeric array when shapes agree (NaN for missing scalars),
    an array of str for strings, else an object array with one entry per point (None if missing)."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, str) for v in present) and len(present) == len(values):
        return np.array(values, dtype=str)
    arrays = [np.asarray(v) for v in present]
    numeric = all(a.dtype.kind in "biuf" for a in arrays)
    same_shape = len({a.shape for a in arrays}) == 1
    if numeric and same_shape and len(present) == len(values):
        return np.stack(arrays)
    if numeric and same_shape and arrays[0].shape == ():
        return np.array([np.nan if v is None else float(v) for v in values])
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def read_points(path: str | Path, status: str | None = "ok") -> dict[str, np.ndarray]:
    """Every point of a store as {name: array with one entry per point}, oldest first.

    Names: 'key', 'status', 'error', 'written_unix_s', and 'inputs/...', 'outputs/...',
    'provenance/...' as in the file. status: "ok" (default), "failed", or None for all."""
    chosen = _chosen(path, status)
    names = sorted({name for _, p in chosen for name in p})
    out = {"key": np.array([k for k, _ in chosen], dtype=str)}
    out.update({name: _column([p.get(name) for _, p in chosen]) for name in names})
    return out


def _tidy_row(point: dict[str, Any], provenance: bool) -> dict[str, Any]:
    """One point's row: status, error, scalar parameters, scalar results and summaries of
    numeric array results, wall time and engine (all scalar provenance with provenance=True)."""
    row = {"status": point["status"], "error": point["error"]}
    swept = any(name.startswith("inputs/params/") for name in point)
    for name, value in point.items():
        group, _, rest = name.partition("/")
        arr = np.asarray(value)
        if group == "inputs" and arr.ndim == 0:
            if rest.startswith("params/"):
                row[rest.removeprefix("params/").replace("/", ".")] = value
            elif not swept:  # a store not written by a sweep: its scalar inputs are its parameters
                row[rest.replace("/", ".")] = value
        elif group == "outputs" and arr.ndim == 0:
            row[rest.replace("/", ".")] = value
        elif group == "outputs" and arr.dtype.kind in "biuf" and arr.size:
            for summary in SUMMARIES:
                row[f"{rest.replace('/', '.')}.{summary}"] = float(getattr(arr, summary)())
        elif name in ALWAYS:
            row[ALWAYS[name]] = value
        elif group == "provenance" and provenance and arr.ndim == 0:
            row[f"provenance.{rest.replace('/', '.')}"] = value
    return row


def to_dataframe(path: str | Path, status: str | None = None, *, provenance: bool = False):
    """A tidy pandas DataFrame, one row per point (index: key, oldest first).

    Columns: status, error; the point's scalar parameters (a sweep's 'table.key' names, such as
    'crossbar.r_row'); its scalar results ('read_margin.margin') and min/mean/max of each
    numeric array result ('column_currents.max'); wall_time_s and engine. provenance=True adds
    every scalar provenance value ('provenance.host', ...). Arrays: to_long() or to_xarray()."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    chosen = _chosen(path, status)
    rows = [{"key": key, **_tidy_row(point, provenance)} for key, point in chosen]
    return pd.DataFrame(rows, columns=None if rows else ["key", "status", "error"]).set_index("key")


def _output_name(name: str) -> str:
    return name if name.startswith(("inputs/", "outputs/", "provenance/")) else f"outputs/{name}"


def _dims(name: str, ndim: int) -> tuple[str, ...]:
    known = DIMS.get(name.removeprefix("outputs/"), ())
    return known if len(known) == ndim else tuple(f"dim_{n}" for n in range(ndim))


def to_long(path: str | Path, name: str, status: str | None = "ok"):
    """One array result of every point in long form: a pandas DataFrame with columns key, one
    integer column per array dimension (e.g. vector, col for column_currents) and value.

    name: 'column_currents' (an output) or a full name such as 'inputs/design/conductance'.
    Join it with to_dataframe() on key for the parameters."""
    import pandas as pd

    full = _output_name(name)
    frames = []
    for key, point in _chosen(path, status):
        if full not in point:
            continue
        arr = np.asarray(point[full])
        index = np.indices(arr.shape).reshape(arr.ndim, -1)
        columns = {"key": np.full(arr.size, key)} | dict(zip(_dims(full, arr.ndim), index)) | {"value": arr.ravel()}
        frames.append(pd.DataFrame(columns))
    if not frames:
        raise KeyError(f"{path}: no point with {status or 'any'} status has {full!r}")
    return pd.concat(frames, ignore_index=True)


def to_xarray(path: str | Path, status: str | None = "ok"):
    """An xarray Dataset with dimension 'point' (coordinate: key): the columns of to_dataframe()
    and every numeric array result as a variable over ('point', its dimensions). Arrays of
    differing shapes (a swept array size) are padded with NaN to the largest."""
    try:
        import xarray as xr
    except ImportError:
        raise ImportError("to_xarray needs xarray: pip install xarray") from None
    chosen = _chosen(path, status)
    table = to_dataframe(path, status).rename_axis("point")
    dataset = xr.Dataset.from_dataframe(table)
    names = sorted({n for _, p in chosen for n, v in p.items()
                    if n.startswith("outputs/") and np.ndim(v) and np.asarray(v).dtype.kind in "biuf"})
    for full in names:
        arrays = [np.asarray(p[full], dtype=float) if full in p else None for _, p in chosen]
        ndims = {a.ndim for a in arrays if a is not None}
        if len(ndims) != 1:
            continue  # no common dimensions to line up: read it with to_long()
        shape = tuple(np.max([a.shape for a in arrays if a is not None], axis=0))
        stacked = np.full((len(chosen), *shape), np.nan)
        for n, a in enumerate(arrays):
            if a is not None:
                stacked[(n, *(slice(0, s) for s in a.shape))] = a
        dataset[full.removeprefix("outputs/").replace("/", ".")] = (("point", *_dims(full, len(shape))), stacked)
    return dataset
