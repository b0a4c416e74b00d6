"""Measured waveforms from a lab: CSV files with columns time_s, voltage_v, current_a.

A file is read by its header names (other columns are ignored), checked for what a fit needs
(finite numbers, increasing time, SI magnitudes, some switching), and kept with its sha256,
so a fit records exactly which bytes it used. No text from a file ever leaves this module:
only the three numeric columns and the hash do.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ("time_s", "voltage_v", "current_a")
MAX_ABS_V = 50.0  # [V] no memristor is swept beyond this: larger values are in mV or wrong
MAX_ABS_I = 1.0  # [A] ... nor carries more: larger values are in µA/nA (the 1e6 slip) or wrong
MIN_PEAK_I = 1e-12  # [A] below this everywhere the file holds only the instrument's noise
MAX_DURATION_S = 1e6  # [s] longer records are in another unit (µs or ns written as numbers of them)
SWITCH_LN = np.log(1.5)  # the current at one voltage must vary by 1.5x somewhere: hysteresis
V_BIN_FRACTION = 0.01  # voltages within 1% of the peak count as "the same voltage"
MIN_POINTS = 20


@dataclass(frozen=True, eq=False)
class Measurement:
    """One measured waveform: time_s, voltage_v (across the device), current_a (into its first
    port), temperature_k of the stage, source (file name, for messages only) and sha256 of the
    file's bytes."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    temperature_k: float
    source: str
    sha256: str


def _column_index(header: list[str], source: str) -> list[int]:
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; the CSV header must name {list(COLUMNS)} "
                         "(SI units: s, V, A; other columns are ignored)")
    return [names.index(c) for c in COLUMNS]


def parse_csv(text: str, source: str) -> np.ndarray:
    """(n, 3) array of time_s, voltage_v, current_a from CSV text with a header line."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].lstrip().startswith("#")]
    if len(rows) < 2:
        raise ValueError(f"{source}: no data rows after the header")
    idx = _column_index(rows[0], source)
    data = np.empty((len(rows) - 1, 3))
    for k, row in enumerate(rows[1:]):
        try:
            data[k] = [float(row[i]) for i in idx]
        except (ValueError, IndexError):
            raise ValueError(f"{source}: data row {k + 1} is not three numbers in columns {list(COLUMNS)}") from None
    return data


def check(time_s: np.ndarray, voltage_v: np.ndarray, current_a: np.ndarray, source: str) -> None:
    """Refuse a waveform a fit cannot use, with the reason (one line)."""
    if len(time_s) < MIN_POINTS:
        raise ValueError(f"{source}: {len(time_s)} points; a fit needs at least {MIN_POINTS}")
    if not np.all(np.isfinite(np.stack([time_s, voltage_v, current_a]))):
        raise ValueError(f"{source}: NaN or infinite values in the data")
    if np.any(np.diff(time_s) <= 0) or time_s[0] < 0:
        raise ValueError(f"{source}: time_s must start at >= 0 s and strictly increase")
    if time_s[-1] - time_s[0] > MAX_DURATION_S:
        raise ValueError(f"{source}: the record lasts {time_s[-1] - time_s[0]:.3g} s; time_s must be in seconds")
    v_peak, i_peak = np.max(np.abs(voltage_v)), np.max(np.abs(current_a))
    if v_peak > MAX_ABS_V:
        raise ValueError(f"{source}: |voltage_v| reaches {v_peak:.3g}; it must be in volts (is it in mV?)")
    if i_peak > MAX_ABS_I:
        raise ValueError(f"{source}: |current_a| reaches {i_peak:.3g}; it must be in amperes "
                         "(is it in µA or mA? units off by 1e6 or 1e3)")
    if i_peak < MIN_PEAK_I or v_peak == 0:
        raise ValueError(f"{source}: |current_a| stays below {MIN_PEAK_I:g} A (or no voltage is applied): "
                         "nothing but noise to fit")
    if hysteresis_ln(voltage_v, current_a) < SWITCH_LN:
        raise ValueError(f"{source}: no switching in the data (the current at equal voltages varies by less than "
                         f"{np.exp(SWITCH_LN):.2g}x): a memristor's state cannot be fitted to it")


def hysteresis_ln(voltage_v: np.ndarray, current_a: np.ndarray) -> float:
    """The largest spread of ln|I| among samples at the same voltage (within V_BIN_FRACTION of the
    peak, away from 0 V): 0 for a fixed I-V curve, ln(R_off/R_on) for a full switch."""
    v_peak = np.max(np.abs(voltage_v))
    keep = (np.abs(voltage_v) > 2 * V_BIN_FRACTION * v_peak) & (np.abs(current_a) > 0)
    bins = np.round(voltage_v[keep] / (V_BIN_FRACTION * v_peak)).astype(int)
    ln_i = np.log(np.abs(current_a[keep]))
    spread = 0.0
    for b in np.unique(bins):
        values = ln_i[bins == b]
        if len(values) >= 2:
            spread = max(spread, float(np.ptp(values)))
    return spread


def read_measurement(path, temperature_k: float = 300.0) -> Measurement:
    """One CSV file (see module docstring) at stage temperature temperature_k [K], checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name}: not a UTF-8 text (CSV) file") from None
    data = parse_csv(text, path.name)
    if not (np.isfinite(temperature_k) and temperature_k > 0):
        raise ValueError(f"{path.name}: temperature must be > 0 K, got {temperature_k!r}")
    t, v, i = data.T
    check(t, v, i, path.name)
    return Measurement(t - t[0], v, i, float(temperature_k), path.name, hashlib.sha256(raw).hexdigest())


def write_csv(path, time_s, voltage_v, current_a) -> Path:
    """A CSV in the format read_measurement reads (for synthetic data and exports)."""
    path = Path(path)
    table = np.column_stack([time_s, voltage_v, current_a])
    np.savetxt(path, table, delimiter=",", header=",".join(COLUMNS), comments="", fmt="%.10e")
    return path
