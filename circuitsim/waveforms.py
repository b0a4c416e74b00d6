"""Line waveforms for array transients: pulses, PWL, PWM and bit-serial input encodings, 1T1R gates.

Every builder returns what circuitsim.transient takes: a piecewise-linear `Drive` (or one line's
(time_s, volts) breakpoints that `assemble` puts on a common time grid), so ngspice and the numpy
engine see exactly the same stimulus.

Pulse width convention: width_s is the pulse's area over its amplitude, which for a trapezoid is
its full width at half amplitude. Encodings keep it linear in the value even when a pulse is
shorter than its edges: a pulse of width w with edge time e is the ideal w-wide rectangle seen
through a driver that slews over e (the rectangle convolved with an e-wide box), a trapezoid
for w >= e and a clipped triangle of height w/e for w < e, of area amplitude·w either way.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from circuitsim.transient import Drive
from circuitsim.validate import finite_array, integer, positive_scalar

Line = float | tuple[np.ndarray, np.ndarray]  # a constant [V] or (time_s, volts) breakpoints


def _nonnegative(name: str, value) -> float:
    return float(finite_array(name, value, shape=(), nonnegative=True))


def pwl(time_s, volts) -> tuple[np.ndarray, np.ndarray]:
    """One line's waveform from user points: time_s [s] >= 0 strictly increasing, volts [V] at
    those times (held before the first point and after the last)."""
    t = finite_array("pwl time_s", time_s)
    v = finite_array("pwl volts", volts)
    if t.ndim != 1 or t.shape != v.shape or len(t) < 1:
        raise ValueError(f"pwl needs 1-D time_s and volts of one length, got shapes {t.shape} and {v.shape}")
    if t[0] < 0:
        raise ValueError(f"pwl time_s must start at >= 0 s, got {t[0]:g}")
    steps = np.diff(t)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise ValueError(f"pwl time_s must strictly increase: point {k + 1} ({t[k + 1]:g} s) "
                         f"does not follow point {k} ({t[k]:g} s)")
    return t, v


def trapezoid(amplitude_v: float, width_s: float, rise_s: float, fall_s: float | None = None, *,
              delay_s: float = 0.0, base_v: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One trapezoidal pulse from base_v to base_v + amplitude_v: starts rising at delay_s, rises
    in rise_s, falls in fall_s (default rise_s); width_s at half amplitude, so its flat top lasts
    width_s − (rise_s + fall_s)/2, which must not be negative."""
    amplitude = float(finite_array("amplitude_v", amplitude_v, shape=()))
    width, rise = positive_scalar("width_s", width_s), positive_scalar("rise_s", rise_s)
    fall = rise if fall_s is None else positive_scalar("fall_s", fall_s)
    delay, base = _nonnegative("delay_s", delay_s), float(finite_array("base_v", base_v, shape=()))
    flat = width - (rise + fall) / 2
    if flat < 0:
        raise ValueError(f"width_s = {width:g} s is shorter than its edges allow (>= (rise + fall)/2 = "
                         f"{(rise + fall) / 2:g} s)")
    knots = delay + np.cumsum([0.0, rise, flat, fall])
    t, v = np.unique(knots, return_index=True)  # a zero flat top: one peak point
    return pwl(t, base + amplitude * np.array([0.0, 1.0, 1.0, 0.0])[v])


def _slewed(start_s: float, width_s: float, edge_s: float, amplitude_v: float) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of a w-wide rectangle through an e-slew driver (area amplitude·w; module doc)."""
    short, long_ = min(width_s, edge_s), max(width_s, edge_s)
    t = start_s + np.array([0.0, short, long_, width_s + edge_s])
    v = amplitude_v * np.array([0.0, short / edge_s, short / edge_s, 0.0]) + 0.0  # no -0.0 in decks
    keep = np.r_[True, np.diff(t) > 0]
    return t[keep], v[keep]


def _join(pulses: list[tuple[np.ndarray, np.ndarray]]) -> Line:
    """One line from pulses in time order (0 V between them; a pulse may end where the next starts)."""
    if not pulses:
        return 0.0
    t, v = np.concatenate([t for t, _ in pulses]), np.concatenate([v for _, v in pulses])
    keep = np.r_[True, np.diff(t) > 0]
    return t[keep], v[keep]


def assemble(duration_s: float, v_rows: Sequence[Line], v_cols: Sequence[Line],
             v_gates: Sequence[Line] | None = None) -> Drive:
    """A Drive from 0 to duration_s from one waveform per line (a constant or (time_s, volts)
    breakpoints), on the union of all breakpoints, so every line is reproduced exactly."""
    duration = positive_scalar("duration_s", duration_s)
    groups = {"v_rows": list(v_rows), "v_cols": list(v_cols)}
    if v_gates is not None:
        groups["v_gates"] = list(v_gates)
    waves = {}
    for name, lines in groups.items():
        if not lines:
            raise ValueError(f"{name} needs at least one line")
        waves[name] = [(np.zeros(1), np.atleast_1d(finite_array(f"{name}[{k}]", line, shape=())))
                       if np.ndim(line) == 0 else pwl(*line) for k, line in enumerate(lines)]
    knots = np.concatenate([[0.0, duration]] + [t for lines in waves.values() for t, _ in lines])
    if knots.max() > duration:
        raise ValueError(f"a waveform has a breakpoint at {knots.max():g} s, after duration_s = {duration:g} s")
    grid = np.unique(knots)
    arrays = {name: np.stack([np.interp(grid, t, v) for t, v in lines], axis=1) for name, lines in waves.items()}
    return Drive(grid, arrays["v_rows"], arrays["v_cols"], arrays.get("v_gates"))


def pulse_rows(n_rows: int, n_cols: int, rows, amplitude_v: float, width_s: float, rise_s: float, *,
               fall_s: float | None = None, delay_s: float = 0.0, duration_s: float | None = None,
               v_unselected: float = 0.0, v_cols: float = 0.0) -> Drive:
    """A trapezoidal pulse (see trapezoid) on the chosen rows (indices), v_unselected on the others,
    columns held at v_cols; duration_s defaults to twice the pulse's end."""
    n_rows, n_cols = integer("n_rows", n_rows, minimum=1), integer("n_cols", n_cols, minimum=1)
    chosen = _row_indices(rows, n_rows)
    t, v = trapezoid(amplitude_v, width_s, rise_s, fall_s, delay_s=delay_s, base_v=v_unselected)
    duration = 2 * t[-1] if duration_s is None else duration_s
    lines = [(t, v) if k in chosen else float(v_unselected) for k in range(n_rows)]
    return assemble(duration, lines, [float(v_cols)] * n_cols)


def _row_indices(rows, n_rows: int) -> set[int]:
    idx = np.atleast_1d(np.asarray(rows))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or not len(idx):
        raise TypeError(f"rows must be row indices (whole numbers), got {rows!r:.40}")
    if idx.min() < 0 or idx.max() >= n_rows:
        raise ValueError(f"row indices must be in [0, {n_rows - 1}], got {idx.min()}..{idx.max()}")
    return set(idx.tolist())


def pwm(values, n_cols: int, *, amplitude_v: float, full_width_s: float, edge_s: float,
        value_max: float = 1.0, start_s: float = 0.0, duration_s: float | None = None) -> Drive:
    """Pulse-width-modulated input vector: row k gets one pulse of fixed amplitude whose width is
    |values[k]|/value_max·full_width_s (negative values: −amplitude_v), all starting at start_s,
    so the charge a cell passes is G·amplitude·width; columns at 0 V. duration_s defaults to the
    end of the longest possible pulse, start_s + full_width_s + edge_s."""
    x = finite_array("values", values)
    vmax, full = positive_scalar("value_max", value_max), positive_scalar("full_width_s", full_width_s)
    edge, start = positive_scalar("edge_s", edge_s), _nonnegative("start_s", start_s)
    amplitude = positive_scalar("amplitude_v", amplitude_v)
    if x.ndim != 1 or not len(x):
        raise ValueError(f"values must be a non-empty 1-D input vector (one per row), got shape {x.shape}")
    if np.any(np.abs(x) > vmax):
        raise ValueError(f"values must lie in [-{vmax:g}, {vmax:g}] (value_max) to be encodable, "
                         f"got {x[np.argmax(np.abs(x))]:g}")
    lines = [0.0 if xk == 0 else _slewed(start, abs(xk) / vmax * full, edge, np.sign(xk) * amplitude) for xk in x]
    duration = start + full + edge if duration_s is None else duration_s
    return assemble(duration, lines, [0.0] * integer("n_cols", n_cols, minimum=1))


def bit_weights(bits: int, msb_first: bool = True) -> np.ndarray:
    """Weight of each slot of a bit-serial drive, in slot order (2^(bits−1) ... 1 MSB first)."""
    weights = 2.0 ** np.arange(integer("bits", bits, minimum=1, maximum=32))
    return weights[::-1] if msb_first else weights


def bit_serial(values, n_cols: int, *, bits: int, amplitude_v: float, slot_s: float, width_s: float,
               edge_s: float, msb_first: bool = True, slot_scale=None, duration_s: float | None = None) -> Drive:
    """Bit-serial input vector: slot k (from k·slot_s) carries one bit of every row's integer
    value as a pulse of width_s (0 V for a 0 bit), bits in MSB- or LSB-first order; negative
    values (sign-magnitude) pulse at −amplitude_v. slot_scale: per-slot amplitude factors (in
    slot order; default 1, the digital decoder then weights slot charges by bit_weights; give
    bit_weights(bits)/2^(bits−1) to weight them in the analog domain instead). Columns at 0 V;
    duration_s defaults to the end of the last slot, bits·slot_s."""
    n_bits = integer("bits", bits, minimum=1, maximum=32)
    x = finite_array("values", values)
    if x.ndim != 1 or not len(x):
        raise ValueError(f"values must be a non-empty 1-D input vector (one per row), got shape {x.shape}")
    top = 2**n_bits - 1
    if np.any(x != np.round(x)) or np.any(np.abs(x) > top):
        bad = x[np.argmax((x != np.round(x)) | (np.abs(x) > top))]
        raise ValueError(f"values must be whole numbers in [-{top}, {top}] for {n_bits} bits, got {bad:g}")
    slot, width = positive_scalar("slot_s", slot_s), positive_scalar("width_s", width_s)
    edge, amplitude = positive_scalar("edge_s", edge_s), positive_scalar("amplitude_v", amplitude_v)
    if width + edge > slot:
        raise ValueError(f"a pulse (width_s + edge_s = {width + edge:g} s) must fit in its slot_s = {slot:g} s")
    scale = np.ones(n_bits) if slot_scale is None else finite_array("slot_scale", slot_scale, shape=(n_bits,))
    order = np.arange(n_bits)[::-1] if msb_first else np.arange(n_bits)  # bit index carried by each slot
    lines = []
    for xk in x.astype(np.int64):
        slots = [_slewed(k * slot, width, edge, np.sign(xk) * amplitude * scale[k])
                 for k, b in enumerate(order) if (abs(xk) >> b) & 1 and scale[k] != 0]
        lines.append(_join(slots))
    duration = n_bits * slot if duration_s is None else duration_s
    return assemble(duration, lines, [0.0] * integer("n_cols", n_cols, minimum=1))


def gate_pulse(v_on: float, t_on_s: float, t_off_s: float, edge_s: float, v_off: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """A 1T1R word-line gate: v_off, up to v_on from t_on_s (in edge_s), back to v_off from
    t_off_s; for assemble's v_gates."""
    on, off = _nonnegative("t_on_s", t_on_s), positive_scalar("t_off_s", t_off_s)
    edge = positive_scalar("edge_s", edge_s)
    if off < on + edge:
        raise ValueError(f"t_off_s = {off:g} s must come after the gate has risen (t_on_s + edge_s = {on + edge:g} s)")
    return trapezoid(float(v_on) - float(v_off), off - on, edge, delay_s=on, base_v=v_off)
