"""Input checks in one place: every public entry point validates here before anything runs."""
from __future__ import annotations

import re

import numpy as np

_SPICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def finite_array(name: str, value, *, shape: tuple[int, ...] | None = None, nonnegative: bool = False,
                 positive: bool = False) -> np.ndarray:
    """A float64 copy of `value`, checked for numbers, finiteness, shape and sign."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(value).__name__}") from exc
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


def broadcast_resistance(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """Scalar or per-segment resistance (Ω) broadcast to `shape`, checked finite and >= 0."""
    arr = finite_array(name, value, nonnegative=True)
    if arr.shape not in ((), shape):
        raise ValueError(f"{name} must be a scalar or have shape {shape}, got {arr.shape}")
    out = np.broadcast_to(arr, shape).copy()
    out.flags.writeable = False
    return out


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
        return arr[None, :], True
    if arr.ndim == 2 and arr.shape[1] == length and arr.shape[0] > 0:
        return arr, False
    raise ValueError(f"{name} must have shape ({length},) or (batch, {length}), got {arr.shape}")


def spice_name(name: str) -> str:
    """A SPICE identifier: letters, digits, underscore. Rejects anything that could carry a
    command (newline, '.control', 'shell', spaces, quotes) into a deck."""
    if not isinstance(name, str) or not _SPICE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid SPICE name (letters, digits, _; starts with a letter)")
    return name
