"""Reading an array through its RC lines: how long until the column currents settle, and what a
read costs including charging the lines. Both run a transient of a read step (every row ramps to
its read voltage and holds it) with the caller's engine and compare it with simulate()'s DC answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.engines import simulate
from circuitsim.transient import Drive, array_transient
from circuitsim.validate import finite_array, integer, positive_scalar

RISE_S = 1e-11  # default edge of the read step [s]
SETTLE_SPAN = 20.0  # a first run lasts this many estimated time constants (doubled until it settles)
MAX_DOUBLINGS = 6
OUTPUT_POINTS = 4001  # output times of a read transient (the numpy engine's; ngspice returns its own)
GAUSS_POINTS = 8  # Gauss-Legendre points for the DC power along the read edge


def adc_tolerance(bits: int) -> float:
    """Half an LSB of a `bits`-bit ADC spanning the full-scale current, as a fraction of it."""
    return 0.5 / 2 ** integer("bits", bits, minimum=1, maximum=32)


def time_constant_estimate(xb: Crossbar) -> float:
    """A rough upper estimate [s] of the slowest line's time constant: for every row and column,
    (driver or sense resistance + the whole line's resistance) × (the whole line's capacitance, cell
    and coupling capacitance included); the largest of them. It only sizes the first simulated
    window: read_latency extends the window until the currents have settled."""
    c_cell = xb.c_cell + 2 * xb.c_couple
    row = (xb.r_driver + xb.r_row.sum(axis=1)) * (xb.c_row + c_cell).sum(axis=1)
    col = (xb.r_sense + xb.r_col.sum(axis=0)) * (xb.c_col + c_cell).sum(axis=0)
    return float(max(row.max(), col.max()))


def _read_drive(xb: Crossbar, v_rows: np.ndarray, v_cols: np.ndarray, v_gates, rise_s: float,
                duration_s: float) -> Drive:
    """Rows and columns ramp from 0 V to their read voltages in rise_s and hold them to duration_s."""
    t = np.array([0.0, rise_s, duration_s])
    level = np.array([0.0, 1.0, 1.0])
    gates = None if v_gates is None else np.outer(np.ones(3), v_gates)
    return Drive(t, np.outer(level, v_rows), np.outer(level, v_cols), gates)


def _check_read(xb: Crossbar, v_rows, v_cols, v_gates, rise_s) -> tuple[np.ndarray, np.ndarray, float]:
    if not isinstance(xb, Crossbar):
        raise TypeError(f"expected a circuitsim.Crossbar, got {type(xb).__name__}")
    rows, cols = xb.shape
    v_r = finite_array("v_rows", v_rows, shape=(rows,))
    v_c = np.zeros(cols) if v_cols is None else finite_array("v_cols", v_cols, shape=(cols,))
    if v_gates is not None:
        finite_array("v_gates", v_gates, shape=(rows,))
    return v_r, v_c, positive_scalar("rise_s", rise_s)


@dataclass(frozen=True, eq=False)
class ReadLatency:
    """settling_s (cols,): when each column current enters its DC value ± tolerance·full scale and
    stays there [s] (from the start of the read edge); latency_s: the largest, the array's read
    latency; full_scale_a: the largest |DC column current| [A]; tolerance: the band as a fraction
    of full scale; dc_currents_a (cols,) [A]; time_s (T,) and column_currents (T, cols) [A]: the
    read transient the figures show; rise_s: the read edge [s]; engine."""

    settling_s: np.ndarray
    latency_s: float
    full_scale_a: float
    tolerance: float
    dc_currents_a: np.ndarray
    time_s: np.ndarray
    column_currents: np.ndarray
    rise_s: float
    engine: str


def settling_times(time_s: np.ndarray, currents: np.ndarray, final: np.ndarray, band: float) -> np.ndarray:
    """(cols,) the time [s] after which each column of currents (T, cols) stays within band [A] of
    final (cols,), interpolated linearly between the last output time outside the band and the
    next; NaN where the last output time is still outside."""
    outside = np.abs(currents - final) > band
    out = np.zeros(currents.shape[1])
    for j in range(currents.shape[1]):
        bad = np.flatnonzero(outside[:, j])
        if not len(bad):
            continue
        k = bad[-1]
        if k == len(time_s) - 1:
            out[j] = np.nan
            continue
        # the band edge crossed between k (outside) and k + 1 (inside)
        d0, d1 = abs(currents[k, j] - final[j]), abs(currents[k + 1, j] - final[j])
        frac = (d0 - band) / (d0 - d1) if d0 != d1 else 1.0
        out[j] = time_s[k] + frac * (time_s[k + 1] - time_s[k])
    return out


def read_latency(xb: Crossbar, v_rows, *, tolerance: float = 0.5 / 256, engine: str = "numpy", v_cols=None,
                 v_gates=None, rise_s: float = RISE_S, duration_s: float | None = None,
                 rtol: float | None = None) -> ReadLatency:
    """Read latency of xb for row read voltages v_rows [V] (rows,): the time until every column
    current stays within tolerance × full scale of simulate()'s DC answer (e.g. adc_tolerance(8),
    half an LSB of an 8-bit ADC, the default).

    The read is a step: every row (and sense node, v_cols [V], default 0) ramps from 0 V in rise_s
    [s] and holds; 1T1R gates sit at v_gates [V] (default v_gate_on). duration_s: the simulated
    window (default: SETTLE_SPAN estimated time constants, doubled until every column has
    settled before its last 10 %). engine: "numpy" or "spice", for the DC answer as well; rtol:
    the numpy integrator's local error (solver.transient.StepOptions; default tolerance/200: an
    error of rtol shifts a band crossing by about rtol/tolerance of a time constant).
    """
    v_r, v_c, rise = _check_read(xb, v_rows, v_cols, v_gates, rise_s)
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance is a fraction of full scale in (0, 1), got {tolerance!r}")
    rtol = tolerance / 200 if rtol is None else rtol
    dc = np.asarray(simulate(xb, v_r, v_c, engine=engine, v_gates=v_gates).column_currents)
    full_scale = float(np.max(np.abs(dc)))
    if full_scale == 0:
        raise ValueError("every column's DC current is 0: there is no read to settle")
    window = max(rise + SETTLE_SPAN * time_constant_estimate(xb), 2 * rise) if duration_s is None \
        else positive_scalar("duration_s", duration_s)
    for _ in range(MAX_DOUBLINGS + 1):
        res = array_transient(xb, None, _read_drive(xb, v_r, v_c, v_gates, rise, window), engine=engine,
                              detail=False, rtol=rtol, t_eval=np.linspace(0.0, window, OUTPUT_POINTS),
                              max_step_s=window / 2000)
        settle = settling_times(res.time_s, res.column_currents, dc, tolerance * full_scale)
        if np.all(settle <= 0.9 * window) or duration_s is not None:
            break
        window *= 2
    if np.any(np.isnan(settle)):
        raise ValueError(f"the column currents have not settled within {window:.3g} s; give a longer duration_s")
    return ReadLatency(settle, float(settle.max()), full_scale, float(tolerance), dc, res.time_s,
                       res.column_currents, rise, engine)


@dataclass(frozen=True)
class ReadPulseEnergy:
    """Energy of one read step held for duration_s [s], from the sources' point of view [J]:
    delivered_j: ∫ Σ v·i of every source; stored_j: left in the capacitors at the end;
    dissipated_j = delivered − stored (in wires, cells, drivers); static_j: what the DC currents
    alone cost over the same drive (∫ P_dc(v(t)) dt: the array without its capacitance);
    dynamic_j = delivered − static: charging the lines (the stored energy and the loss of
    charging it, C·V² for a step into a plain RC line)."""

    duration_s: float
    delivered_j: float
    stored_j: float
    dissipated_j: float
    static_j: float
    dynamic_j: float
    engine: str


def read_pulse_energy(xb: Crossbar, v_rows, *, duration_s: float, engine: str = "numpy", v_cols=None,
                      v_gates=None, rise_s: float = RISE_S, rtol: float = 1e-5) -> ReadPulseEnergy:
    """Energy of a read of xb: rows (and sense nodes at v_cols) ramp from 0 V to v_rows [V] in rise_s
    [s] and hold until duration_s [s], split into the static part (the DC currents of the same
    drive) and the dynamic part (charging the lines); see ReadPulseEnergy."""
    v_r, v_c, rise = _check_read(xb, v_rows, v_cols, v_gates, rise_s)
    duration = positive_scalar("duration_s", duration_s)
    if duration <= rise:
        raise ValueError(f"duration_s ({duration:g} s) must exceed rise_s ({rise:g} s)")
    res = array_transient(xb, None, _read_drive(xb, v_r, v_c, v_gates, rise, duration), engine=engine,
                          detail=engine == "spice", rtol=rtol, t_eval=[0.0, duration], max_step_s=duration / 2000)
    # the DC power along the edge (Gauss-Legendre in the ramp fraction) and on the hold
    nodes, weights = np.polynomial.legendre.leggauss(GAUSS_POINTS)
    fraction = np.r_[0.5 * (nodes + 1), 1.0]
    power = np.asarray(simulate(xb, np.outer(fraction, v_r), np.outer(fraction, v_c), engine=engine,
                                v_gates=None if v_gates is None else np.outer(np.ones(len(fraction)), v_gates)).power)
    static = rise * 0.5 * float(weights @ power[:-1]) + (duration - rise) * float(power[-1])
    delivered, stored = float(res.source_energy_j[-1]), float(res.stored_energy_j[-1])
    return ReadPulseEnergy(duration, delivered, stored, delivered - stored, static, delivered - static, engine)
