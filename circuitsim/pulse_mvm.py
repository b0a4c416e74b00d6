"""Pulse-coded reads and write pulses through RC lines: what the lines' dynamics cost a designer.

pwm_mvm / bit_serial_mvm drive the rows with a pulse-width-modulated or bit-serial input vector
(circuitsim.waveforms), run the array transient (circuitsim.transient, either engine), integrate
each column's sense current over the read window(s), decode the charge, and compare it with
  - the DC answer: the same drive solved quasi-statically (simulate() at every breakpoint of the
    drive, subdivided dc_substeps times for nonlinear cells: the array with its wire resistances
    but without capacitance), decoded the same way;
  - the ideal G·V: Σ_i G_ij·x_i, no wires at all.
For a linear array a window that runs until the lines have discharged collects exactly the DC
answer (the network's transfer at s = 0 times the drive's area); a window closed at the end of
the pulses loses the charge still on its way, which is the dynamic error reported here.

write_pulse applies a write pulse to one cell at a time (V/2 or grounded biasing of the other
lines) and reports the voltage that reaches the cell: its peak, its delay and the time it stays
above a threshold, so near and far cells can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.engines import simulate
from circuitsim.transient import Drive, array_transient
from circuitsim.validate import finite_array, integer, positive_scalar
from circuitsim.waveforms import assemble, bit_serial, bit_weights, pwm, trapezoid

SCHEMES = ("V/2", "ground")
DC_SUBSTEPS_NONLINEAR = 16  # quasi-static points per drive segment for selectors and transistors


def window_charge(time_s, currents, start_s: float, stop_s: float) -> np.ndarray:
    """∫ currents dt [C] over the window start_s..stop_s: currents (T, n) sampled at time_s (T,), linear
    between samples (exact for a piecewise-linear waveform sampled at its breakpoints)."""
    t = np.asarray(time_s, dtype=float)
    i = np.asarray(currents, dtype=float).reshape(len(t), -1)
    grid = np.union1d(t[(t > start_s) & (t < stop_s)], [start_s, stop_s])
    samples = np.stack([np.interp(grid, t, col) for col in i.T], axis=1)
    return np.trapezoid(samples, grid, axis=0)


def _decode(time_s, currents, windows_s: np.ndarray, weights: np.ndarray, unit: float) -> np.ndarray:
    """Σ_k weights[k]·(charge in window k) / unit."""
    return sum(w * window_charge(time_s, currents, lo, hi) for w, (lo, hi) in zip(weights, windows_s)) / unit


@dataclass(frozen=True, eq=False)
class PulseMVM:
    """A pulse-coded MVM read: decoded outputs (cols,) in units of Σ_i G_ij·x_i [S·value] from the
    transient (decoded), the quasi-static DC answer (decoded_dc) and the ideal G·V without wires
    (decoded_ideal); full_scale the largest ideal output with every input at its maximum [S·value];
    windows_s (slots, 2) the read windows [s]; time_s (T,) and column_currents (T, cols) [A] the
    transient's sense currents. An error_vs_dc of about 1e-6 of full scale or less is the transient
    engine's own accuracy (numpy's rtol, ngspice's reltol), not the lines."""

    encoding: str
    engine: str
    decoded: np.ndarray
    decoded_dc: np.ndarray
    decoded_ideal: np.ndarray
    full_scale: float
    windows_s: np.ndarray
    time_s: np.ndarray
    column_currents: np.ndarray
    provenance: dict

    @property
    def error_vs_dc(self) -> np.ndarray:
        """(decoded − decoded_dc)/full_scale per column: what the lines' RC costs."""
        return (self.decoded - self.decoded_dc) / self.full_scale

    @property
    def error_vs_ideal(self) -> np.ndarray:
        """(decoded − decoded_ideal)/full_scale per column: RC, IR drop and cell nonlinearity."""
        return (self.decoded - self.decoded_ideal) / self.full_scale


def _transient(xb: Crossbar, drive: Drive, engine: str, max_step_s: float | None, detail: bool):
    """(time_s, column_currents, cell_voltages or None) of the array's own cells under drive; the
    numpy engine reports at the drive's breakpoints too, so integrals over its output are exact
    where the waveform is linear."""
    t_eval = np.union1d(drive.time_s, np.linspace(0.0, drive.duration_s, 2001)) if engine == "numpy" else None
    res = array_transient(xb, None, drive, engine=engine, max_step_s=max_step_s, t_eval=t_eval, detail=detail)
    return res.time_s, res.column_currents, res.cell_voltages


def _quasi_static(xb: Crossbar, drive: Drive, grid: np.ndarray, engine: str) -> np.ndarray:
    """(len(grid), cols) DC column currents at every grid time (distinct drive vectors solved once)."""
    rows = np.stack([np.interp(grid, drive.time_s, col) for col in drive.v_rows.T], axis=1)
    distinct, back = np.unique(rows, axis=0, return_inverse=True)
    res = simulate(xb, distinct, engine=engine)
    return np.asarray(res.column_currents).reshape(len(distinct), -1)[back.ravel()]


def _mvm(xb: Crossbar, drive: Drive, windows_s: np.ndarray, weights: np.ndarray, unit: float, full_scale: float,
         encoding: str, engine: str, max_step_s: float | None, dc_substeps: int | None) -> PulseMVM:
    if np.any(drive.v_cols != 0):
        raise ValueError("pulse-coded reads hold the columns at 0 V (virtual ground)")
    t, i_col, _ = _transient(xb, drive, engine, max_step_s, detail=False)
    # quasi-static grid: the drive's breakpoints (exact for linear cells), each segment subdivided
    # for nonlinear ones (the trapezoid rule on a ramp then errs by O(1/substeps²): 1e-5 of full
    # scale at 16 on a 1S1R PWM read with 10 % edges)
    if dc_substeps is None:
        dc_substeps = 1 if xb.selector is None and xb.transistor is None else DC_SUBSTEPS_NONLINEAR
    steps = integer("dc_substeps", dc_substeps, minimum=1)
    knots = np.union1d(drive.time_s, windows_s.ravel())
    grid = np.union1d(knots, (knots[:-1, None] + np.diff(knots)[:, None] * np.linspace(0, 1, steps + 1)).ravel())
    i_dc = _quasi_static(xb, drive, grid, engine)
    v_rows = np.stack([np.interp(grid, drive.time_s, col) for col in drive.v_rows.T], axis=1)
    i_ideal = v_rows @ xb.conductance
    return PulseMVM(encoding, engine, _decode(t, i_col, windows_s, weights, unit),
                    _decode(grid, i_dc, windows_s, weights, unit), _decode(grid, i_ideal, windows_s, weights, unit),
                    full_scale, windows_s, t, i_col, {"engine": engine, "dc_points": len(grid)})


def _check_inputs(xb: Crossbar, values) -> np.ndarray:
    if not isinstance(xb, Crossbar):
        raise TypeError(f"expected a Crossbar, got {type(xb).__name__}")
    x = finite_array("values", values)
    if x.shape != (xb.shape[0],):
        raise ValueError(f"values must have one entry per row, shape ({xb.shape[0]},), got {x.shape}")
    return x


def pwm_mvm(xb: Crossbar, values, *, amplitude_v: float, full_width_s: float, edge_s: float,
            value_max: float = 1.0, tail_s: float = 0.0, engine: str = "spice", max_step_s: float | None = None,
            dc_substeps: int | None = None) -> PulseMVM:
    """MVM with pulse-width-coded inputs (waveforms.pwm): one read window from 0 to the end of the
    longest pulse plus tail_s, decoded as charge/(amplitude·full_width/value_max). dc_substeps:
    quasi-static points per drive segment of the DC reference (default 1 for linear cells, where
    it is exact, DC_SUBSTEPS_NONLINEAR with a selector or transistor)."""
    x = _check_inputs(xb, values)
    full, edge = positive_scalar("full_width_s", full_width_s), positive_scalar("edge_s", edge_s)
    tail = float(finite_array("tail_s", tail_s, shape=(), nonnegative=True))
    drive = pwm(x, xb.shape[1], amplitude_v=amplitude_v, full_width_s=full, edge_s=edge, value_max=value_max,
                duration_s=full + edge + tail)
    unit = amplitude_v * full / value_max
    full_scale = float(np.max(xb.conductance.sum(axis=0))) * value_max
    return _mvm(xb, drive, np.array([[0.0, drive.duration_s]]), np.ones(1), unit, full_scale, "pwm", engine,
                max_step_s, dc_substeps)


def bit_serial_mvm(xb: Crossbar, values, *, bits: int, amplitude_v: float, slot_s: float, width_s: float,
                   edge_s: float, msb_first: bool = True, tail_s: float = 0.0, engine: str = "spice",
                   max_step_s: float | None = None, dc_substeps: int | None = None) -> PulseMVM:
    """MVM with bit-serial inputs (waveforms.bit_serial): slot k's charge is read over that slot
    (the last slot's window runs tail_s longer), weighted by its bit and decoded as
    Σ_k 2^bit_k·charge_k/(amplitude·width) in integer input units."""
    x = _check_inputs(xb, values)
    slot = positive_scalar("slot_s", slot_s)
    tail = float(finite_array("tail_s", tail_s, shape=(), nonnegative=True))
    drive = bit_serial(x, xb.shape[1], bits=bits, amplitude_v=amplitude_v, slot_s=slot, width_s=width_s,
                       edge_s=edge_s, msb_first=msb_first, duration_s=bits * slot + tail)
    windows = np.stack([np.arange(bits) * slot, (np.arange(bits) + 1) * slot], axis=1)
    windows[-1, 1] = drive.duration_s
    full_scale = float(np.max(xb.conductance.sum(axis=0))) * (2**bits - 1)
    return _mvm(xb, drive, windows, bit_weights(bits, msb_first), amplitude_v * width_s, full_scale, "bit-serial",
                engine, max_step_s, dc_substeps)


def pulse_metrics(time_s, volts, threshold_v: float) -> tuple[float, float, float]:
    """(peak [V], first time at threshold_v [s] (nan if never), time spent at or beyond threshold_v
    [s]) of one waveform, linear between samples; a negative threshold reads a negative pulse."""
    t = np.asarray(time_s, dtype=float)
    sign = 1.0 if threshold_v >= 0 else -1.0
    v, thr = sign * np.asarray(volts, dtype=float), abs(threshold_v)
    above = v >= thr
    if not above.any():
        return float(sign * v.max()), float("nan"), 0.0
    k = int(np.argmax(above))
    t_first = t[0] if k == 0 else t[k - 1] + (thr - v[k - 1]) / (v[k] - v[k - 1]) * (t[k] - t[k - 1])
    # time at or above threshold: each segment contributes the fraction of it above thr
    v0, v1 = v[:-1], v[1:]
    lo, hi = np.minimum(v0, v1), np.maximum(v0, v1)
    crossing = (lo < thr) & (hi >= thr)
    frac = np.where(lo >= thr, 1.0, 0.0)
    frac[crossing] = (hi[crossing] - thr) / (hi[crossing] - lo[crossing])
    width = float(np.sum(np.diff(t) * frac))
    return float(sign * v.max()), float(t_first), width


@dataclass(frozen=True, eq=False)
class WritePulse:
    """Write pulses through the lines: one transient per target cell (cells, (i, j) each).
    time_s (T,) [s] and applied_v (T,) [V] the ideal pulse at the selected driver; cell_voltages
    (T, n) [V] each target's voltage (row wire minus column wire) in its own write, on time_s;
    per target: peak_v [V], delay_s [s] from the applied pulse reaching threshold_v to the cell
    reaching it (nan: never), width_s [s] the time the cell stays at or above threshold_v
    (applied_width_s: the applied pulse's own)."""

    engine: str
    scheme: str
    cells: tuple[tuple[int, int], ...]
    threshold_v: float
    time_s: np.ndarray
    applied_v: np.ndarray
    cell_voltages: np.ndarray
    peak_v: np.ndarray
    delay_s: np.ndarray
    width_s: np.ndarray
    applied_width_s: float


def _write_drive(xb: Crossbar, cell: tuple[int, int], pulse: tuple[np.ndarray, np.ndarray], scheme: str,
                 duration_s: float) -> Drive:
    """The selected row pulses, the selected column holds 0 V; the other lines hold 0 V ("ground")
    or follow the pulse at half its amplitude ("V/2")."""
    rows, cols = xb.shape
    half = (pulse[0], pulse[1] / 2) if scheme == "V/2" else 0.0
    v_rows = [pulse if i == cell[0] else half for i in range(rows)]
    v_cols = [0.0 if j == cell[1] else half for j in range(cols)]
    return assemble(duration_s, v_rows, v_cols)


def write_pulse(xb: Crossbar, cells=None, *, amplitude_v: float, width_s: float, edge_s: float,
                scheme: str = "V/2", threshold_v: float | None = None, tail_s: float | None = None,
                engine: str = "spice", max_step_s: float | None = None, points: int = 2001) -> WritePulse:
    """Write a trapezoidal pulse (waveforms.trapezoid: width_s at half amplitude, edges edge_s) to
    each target cell in turn and measure what reaches it. cells: (i, j) pairs (default the cell
    nearest both drivers, (rows−1, 0), and the farthest, (0, cols−1)); threshold_v: the level
    that counts as written (default half the amplitude); tail_s: time simulated after the pulse
    (default its width). The waveforms are resampled on `points` uniform times for the record;
    the figures of merit come from each engine's own time points."""
    if not isinstance(xb, Crossbar):
        raise TypeError(f"expected a Crossbar, got {type(xb).__name__}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown write scheme {scheme!r}; choose one of {SCHEMES}")
    rows, cols = xb.shape
    targets = ((rows - 1, 0), (0, cols - 1)) if cells is None else tuple(tuple(int(k) for k in c) for c in cells)
    for i, j in targets:
        if not (0 <= i < rows and 0 <= j < cols):
            raise ValueError(f"cell ({i}, {j}) lies outside the {rows}x{cols} array")
    pulse = trapezoid(amplitude_v, width_s, edge_s)
    thr = amplitude_v / 2 if threshold_v is None else float(finite_array("threshold_v", threshold_v, shape=()))
    tail = width_s if tail_s is None else float(finite_array("tail_s", tail_s, shape=(), nonnegative=True))
    duration = float(pulse[0][-1]) + tail
    grid = np.linspace(0.0, duration, points)
    applied = np.interp(grid, *pulse)
    _, t_applied, applied_width = pulse_metrics(*pulse, thr)
    waves, metrics = [], []
    for cell in targets:
        t, _, v_cells = _transient(xb, _write_drive(xb, cell, pulse, scheme, duration), engine, max_step_s, True)
        v = v_cells[:, cell[0], cell[1]]
        peak, t_first, width = pulse_metrics(t, v, thr)
        metrics.append((peak, t_first - t_applied, width))
        waves.append(np.interp(grid, t, v))
    peak, delay, width = (np.array(m) for m in zip(*metrics))
    return WritePulse(engine, scheme, targets, thr, grid, applied, np.stack(waves, axis=1), peak, delay, width,
                      applied_width)
