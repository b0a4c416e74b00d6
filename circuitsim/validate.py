"""Input checks in one place: every public entry point validates here before anything runs.

Numbers must be real numbers (int or float): strings, booleans, complex numbers and ragged
lists are refused rather than coerced. Values outside any physical range for their unit
(PHYSICAL_RANGES) are computed as given, with an UnphysicalValueWarning. Array sizes are
bounded by this machine's memory (max_cells) so an absurd size is refused before anything
is allocated.
"""
from __future__ import annotations

import math
import numbers
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from circuitsim.errors import UnphysicalValueWarning

_SPICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_PACKAGE_DIR = str(Path(__file__).resolve().parent)

# |value| ranges [low, high] per unit outside which no real crossbar has a value; zero is
# always allowed (an open cell, an ideal wire, a grounded line). docs/design-files.md.
PHYSICAL_RANGES = {
    "S": (1e-15, 1.0),  # cell conductance: 1 fS (beyond any HRS) .. 1 S (a 1 Ω cell)
    "Ω": (1e-6, 1e6),  # wire segment, driver and sense resistance: 1 µΩ .. 1 MΩ
    "V": (0.0, 100.0),  # drive, threshold and gate voltages
    "A": (0.0, 1.0),  # device current scales (selector i0, diode isat)
    "F": (1e-21, 1e-6),  # wire-segment and cell capacitance: 1 zF .. 1 µF
}

# Memory the numpy engine needs per cell (peak RSS over the design's size; 2.45-2.78 kB for 1R
# and 1S1R arrays of 256² and 512², benchmarks/bench_memory_per_cell.py): an array whose cells
# need more than this machine's memory is refused before anything is allocated.
SOLVE_BYTES_PER_CELL = 2500


def _is_bool(x) -> bool:
    return isinstance(x, bool | np.bool_)


def _real_array(name: str, value) -> np.ndarray:
    """float64 array of `value`, refusing what numpy would silently coerce: text, booleans,
    complex numbers, None, ragged nested lists."""
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be numeric (int or float), got text {value!r:.40}")
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of numbers (nested lists of equal length)") from None
    kind = arr.dtype.kind
    if kind == "O" and all(isinstance(x, numbers.Real) and not _is_bool(x) for x in arr.flat):
        kind = "f"  # Python ints too large for int64
    elif kind in "iuf" and isinstance(value, list | tuple) and any(_is_bool(x) for x in np.array(value, object).flat):
        kind = "b"  # booleans mixed with numbers
    what = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "text",
            "O": "None" if value is None else "non-numbers"}
    if kind not in "iuf":
        raise TypeError(f"{name} must be numeric (int or float), got {what.get(kind, arr.dtype.name)}")
    try:
        return arr.astype(np.float64)
    except OverflowError:
        raise ValueError(f"{name} must be finite (got a number beyond float range)") from None


def finite_array(name: str, value, *, shape: tuple[int, ...] | None = None, nonnegative: bool = False,
                 positive: bool = False) -> np.ndarray:
    """A read-only float64 copy of `value`, checked for real numbers, finiteness, shape and sign."""
    arr = _real_array(name, value)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min():g}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be positive, got minimum {arr.min():g}")
    arr.flags.writeable = False
    return arr


def positive_scalar(name: str, value) -> float:
    """A finite float > 0."""
    return float(finite_array(name, value, shape=(), positive=True))


def positive_seconds(name: str, value, allow_none: bool = False) -> float | None:
    """A time limit or wait in seconds: a positive finite number (None too where allow_none).
    Anything else, text or booleans included, is a ValueError naming `name`."""
    if value is None and allow_none:
        return None
    if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number of seconds{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return float(value)


def integer(name: str, value, *, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number in [minimum, maximum]; an integral float (8.0, 1e3) is accepted, 2.7 is not."""
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__} {value!r:.40}")
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {number}")
    return number


def _caller_stacklevel() -> int:
    """stacklevel that points a warning at the first frame outside circuitsim (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def check_physical(name: str, arr, unit: str) -> None:
    """Warn (UnphysicalValueWarning) if a non-zero |value| of `arr` lies outside PHYSICAL_RANGES[unit]."""
    low, high = PHYSICAL_RANGES[unit]
    magnitude = np.abs(np.asarray(arr, dtype=float))
    nonzero = magnitude[magnitude > 0]
    if not nonzero.size:
        return
    smallest, largest = nonzero.min(), nonzero.max()
    if largest > high or smallest < low:
        bad = largest if largest > high else smallest
        hint = " (µS typed as S?)" if unit == "S" and largest > high else ""
        warnings.warn(f"{name} = {bad:g} {unit} lies outside any physical range for {unit} "
                      f"({low:g} to {high:g} {unit}){hint}; computing it as given",
                      UnphysicalValueWarning, stacklevel=_caller_stacklevel())


def physical_memory_bytes() -> int:
    """This machine's physical memory [bytes]."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX sysconf
        import psutil

        return psutil.virtual_memory().total


def max_cells() -> int:
    """The most cells an array may have on this machine (physical memory / SOLVE_BYTES_PER_CELL)."""
    return physical_memory_bytes() // SOLVE_BYTES_PER_CELL


def array_size(rows, cols) -> tuple[int, int]:
    """(rows, cols) as whole numbers >= 1, refused if this machine's memory cannot hold the solve."""
    rows, cols = integer("rows", rows, minimum=1), integer("cols", cols, minimum=1)
    limit = max_cells()
    if rows * cols > limit:
        raise ValueError(f"a {rows}x{cols} array ({rows * cols:.3g} cells) needs about "
                         f"{rows * cols * SOLVE_BYTES_PER_CELL / 1e9:.3g} GB to solve; this machine's "
                         f"{physical_memory_bytes() / 1e9:.3g} GB hold at most {limit:.3g} cells: "
                         "split it into tiles")
    return rows, cols


def broadcast_quantity(name: str, value, shape: tuple[int, ...], unit: str) -> np.ndarray:
    """Scalar or per-element value in `unit` broadcast to `shape`, checked finite and >= 0."""
    arr = finite_array(name, value, nonnegative=True)
    if arr.shape not in ((), shape):
        raise ValueError(f"{name} must be a scalar or have shape {shape}, got {arr.shape}")
    check_physical(name, arr, unit)
    out = np.broadcast_to(arr, shape).copy()
    out.flags.writeable = False
    return out


def broadcast_resistance(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """Scalar or per-segment resistance (Ω) broadcast to `shape`, checked finite and >= 0."""
    return broadcast_quantity(name, value, shape, "Ω")


def line_mask(name: str, value, length: int) -> np.ndarray:
    """Boolean mask of floating lines; None means no line floats."""
    if value is None:
        return np.zeros(length, dtype=bool)
    arr = np.asarray(value)
    if arr.dtype != bool or arr.shape != (length,):
        raise ValueError(f"{name} must be a boolean array of shape ({length},)")
    return arr.copy()


def voltages(name: str, value, length: int) -> tuple[np.ndarray, bool]:
    """(batch, length) float64 voltages and whether the input was a single vector."""
    arr = finite_array(name, value)
    if arr.ndim == 1 and arr.shape[0] == length:
        arr, single = arr[None, :], True
    elif arr.ndim == 2 and arr.shape[1] == length and arr.shape[0] > 0:
        single = False
    else:
        raise ValueError(f"{name} must have shape ({length},) or (batch, {length}), got {arr.shape}")
    check_physical(name, arr, "V")
    return arr, single


def spice_name(name: str) -> str:
    """A SPICE identifier: letters, digits, underscore. Rejects anything that could carry a
    command (newline, '.control', 'shell', spaces, quotes) into a deck."""
    if not isinstance(name, str) or not _SPICE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid SPICE name (letters, digits, _; starts with a letter)")
    return name
