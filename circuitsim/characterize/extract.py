"""Figure extraction from measured-style waveforms (time, voltage, current) only.

The functions never look at a model's state or parameters, so the same code reads SPICE
waveforms and the numpy twin's waveforms (and a lab's), and their figures can be compared.
Resistances are chord resistances V/I; switching points are defined on log-conductance,
which treats a 10× change the same way at any resistance level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

V_FLOOR_FRACTION = 1e-3  # points with |V| below this fraction of the sweep peak carry no V/I
MIN_SWITCH_LN = np.log(1.05)  # a half-loop whose conductance changed less than 5% did not switch
G_FLOOR_S = 1e-15  # an open device (zero current) reads as 1 PΩ, so log-conductances stay finite
NL_LIMIT = 50.0  # |N/A| beyond this is a step, not a curve


@dataclass(frozen=True)
class LoopFigures:
    """Figures of one I-V loop: v_set_v, v_reset_v [V] (signed; NaN if that half did not
    switch), r_on_ohm, r_off_ohm [Ω] read at v_read on the loop, on_off_ratio [-],
    set_polarity (+1 if the positive half sets, −1 if the negative half does)."""

    v_set_v: float
    v_reset_v: float
    r_on_ohm: float
    r_off_ohm: float
    on_off_ratio: float
    set_polarity: int

    def as_dict(self) -> dict[str, float]:
        return dict(vars(self))


def _halves(v: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the positive and the negative half of one loop, in time order."""
    return [np.flatnonzero(v > 0), np.flatnonzero(v < 0)]


def _branch_read(v: np.ndarray, i: np.ndarray, idx: np.ndarray, v_read: float) -> float:
    """|I| at |V| = v_read on the monotonic branch idx (interpolated) [A]."""
    a, b = np.abs(v[idx]), np.abs(i[idx])
    order = np.argsort(a)
    if not a.min() <= v_read <= a.max():
        raise ValueError(f"the read voltage {v_read:g} V is outside the sweep (|V| up to {a.max():g} V)")
    return float(np.interp(v_read, a[order], b[order]))


def first_rise(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """The first x where y reaches `level` from below (linear interpolation); x[0] if it starts
    there, NaN if it never does."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    reached = np.flatnonzero(y >= level)
    if not len(reached):
        return float("nan")
    k = reached[0]
    if k == 0:
        return float(x[0])
    return float(x[k - 1] + (level - y[k - 1]) * (x[k] - x[k - 1]) / (y[k] - y[k - 1]))


def loop_figures(v, i, v_read: float, switch_fraction: float = 0.5) -> LoopFigures:
    """Figures of one full I-V loop (0 → +peak → 0 → −peak → 0, either order of halves).

    In each half, R is read at |V| = v_read on the outgoing and on the returning branch; the
    half that raised the conductance is the SET half. Its switching voltage is where ln|I|
    relative to the return branch at the same |V| (the switched state's own I-V, so a
    nonlinear sinh I-V does not count as switching), followed in time, first covers
    `switch_fraction` of its change between those two reads (for a slow sweep of a
    threshold device this tends to the threshold). R_on is the read on
    the return branch of the SET half, R_off that of the RESET half.
    """
    v, i = np.asarray(v, dtype=float), np.asarray(i, dtype=float)
    if not 0 < switch_fraction < 1:
        raise ValueError(f"switch_fraction must be in (0, 1), got {switch_fraction:g}")
    floor = V_FLOOR_FRACTION * np.max(np.abs(v))
    switch_v, g_after, ln_change = [], [], []
    for idx in _halves(v):
        if len(idx) < 4:
            raise ValueError("the waveform is not a full loop: one polarity has fewer than 4 points")
        peak = int(np.argmax(np.abs(v[idx])))
        g_out = max(_branch_read(v, i, idx[:peak + 1], v_read) / v_read, G_FLOOR_S)
        g_back = max(_branch_read(v, i, idx[peak:], v_read) / v_read, G_FLOOR_S)
        change = np.log(g_back / g_out)
        keep = idx[np.abs(v[idx]) >= floor]
        back = idx[peak:][np.argsort(np.abs(v[idx[peak:]]))]
        i_back = np.interp(np.abs(v[keep]), np.abs(v[back]), np.abs(i[back]))  # the switched state's I-V
        ln_rel = np.log(np.maximum(np.abs(i[keep]), G_FLOOR_S * floor) / np.maximum(i_back, G_FLOOR_S * floor))
        level = -(1.0 - switch_fraction) * change
        signed = (ln_rel - level) * np.sign(change)
        crossed = first_rise(np.arange(len(keep), dtype=float), signed, 0.0)
        on_curve = np.interp(crossed, np.arange(len(keep)), v[keep]) if np.isfinite(crossed) else np.nan
        switch_v.append(float(on_curve) if abs(change) >= MIN_SWITCH_LN else float("nan"))
        g_after.append(g_back)
        ln_change.append(change)
    set_half = 0 if ln_change[0] > ln_change[1] else 1
    r_on, r_off = 1.0 / g_after[set_half], 1.0 / g_after[1 - set_half]
    return LoopFigures(switch_v[set_half], switch_v[1 - set_half], r_on, r_off, r_off / r_on,
                       1 if set_half == 0 else -1)


def read_resistances(t, v, i, read_times_s) -> np.ndarray:
    """V/I [Ω] at the given times (inside flat read pulses), interpolated on the waveform."""
    t = np.asarray(t, dtype=float)
    at = np.asarray(read_times_s, dtype=float)
    return np.interp(at, t, v) / np.interp(at, t, i)


def switching_time(t, v, i, t_start_s: float, t_end_s: float, g_from_s: float, g_to_s: float,
                   fraction: float = 0.5) -> float:
    """Time [s] from t_start_s (the start of a pulse's flat top) until the chord conductance
    I/V has covered `fraction` of the way from g_from_s to g_to_s [S] in log; NaN if it does
    not get there before t_end_s."""
    t, v, i = (np.asarray(a, dtype=float) for a in (t, v, i))
    inside = (t >= t_start_s) & (t <= t_end_s)
    ln_g = np.log(np.abs(i[inside] / v[inside]))
    level = ln_g[0] + fraction * np.log(g_to_s / g_from_s)  # from the flat top's own I/V: a sinh I-V is no switch
    signed = (ln_g - level) * np.sign(np.log(g_to_s / g_from_s))
    return first_rise(t[inside], signed, 0.0) - t_start_s


def neurosim_nonlinearity(g) -> float:
    """N/A of the NeuroSim curve G(n) = G0 + B·(1 − exp(−n/A)) through both ends of g (Chen
    et al., IEEE TCAD 37(12), 2018), A matched to the area under the normalized curve:
    0 is linear, > 0 saturating (the usual case, larger is more nonlinear), < 0 accelerating.
    Clipped to ±NL_LIMIT."""
    from scipy.optimize import brentq

    g = np.asarray(g, dtype=float)
    n = np.arange(len(g), dtype=float) / (len(g) - 1)
    u = (g - g[0]) / (g[-1] - g[0])  # 0 → 1 whatever the direction

    def misfit(c):  # grows with c: the curve bends towards early saturation
        shape = n if abs(c) < 1e-9 else np.expm1(-c * n) / np.expm1(-c)
        return np.sum(shape - u)

    if misfit(NL_LIMIT) <= 0 or misfit(-NL_LIMIT) >= 0:
        return float(np.copysign(NL_LIMIT, -misfit(0.0)))
    return float(brentq(misfit, -NL_LIMIT, NL_LIMIT))


def weight_update_figures(g_potentiation, g_depression) -> dict[str, float]:
    """Figures of a potentiation curve (conductances after 0..N identical pulses) and a
    depression curve (after 0..N opposite pulses), as used in hardware-aware training:

    g_min_s, g_max_s, dynamic_range (G_max/G_min), nl_potentiation, nl_depression (NeuroSim's
    N/A, see neurosim_nonlinearity), linearity_error_potentiation/_depression (largest
    deviation from the straight line between the curve's ends, / (G_max − G_min)),
    asymmetry (ANL of Woo & Yu, IEEE Nanotech. Mag. 2018: |G_P(N/2) − G_D(N/2)| / (G_max − G_min)
    with the depression curve counted from its low end) and step_ratio (mean |ΔG| per
    potentiation pulse over that per depression pulse).
    """
    gp, gd = (np.asarray(g, dtype=float) for g in (g_potentiation, g_depression))
    if len(gp) < 3 or len(gd) != len(gp):
        raise ValueError("potentiation and depression curves need the same length >= 3")
    g_min, g_max = min(gp.min(), gd.min()), max(gp.max(), gd.max())
    span = g_max - g_min

    def linearity_error(g):
        line = np.linspace(g[0], g[-1], len(g))
        return float(np.max(np.abs(g - line)) / span)

    mid = len(gp) // 2
    return {"g_min_s": float(g_min), "g_max_s": float(g_max), "dynamic_range": float(g_max / g_min),
            "nl_potentiation": neurosim_nonlinearity(gp), "nl_depression": neurosim_nonlinearity(gd),
            "linearity_error_potentiation": linearity_error(gp), "linearity_error_depression": linearity_error(gd),
            "asymmetry": float(abs(gp[mid] - gd[::-1][mid]) / span),
            "step_ratio": float(np.mean(np.abs(np.diff(gp))) / np.mean(np.abs(np.diff(gd))))}


def distribution(values) -> dict[str, float]:
    """Summary of a set of figures: mean, std, median, cv (std/mean) and sigma_ln (std of
    ln|value|, the lognormal spread), over the finite values; count of those."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if not len(x):
        return {"count": 0.0}
    return {"count": float(len(x)), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
            "median": float(np.median(x)), "cv": float(x.std() / abs(x.mean())),
            "sigma_ln": float(np.log(np.abs(x)).std())}


def trend_and_noise(values) -> tuple[float, float]:
    """(relative drift, relative noise) of a series of repeated reads: a straight line is fitted
    against the read index; drift = its change over the series / its start value, noise = std
    of the residuals / the mean (the read-to-read scatter once the disturb trend is removed)."""
    y = np.asarray(values, dtype=float)
    k = np.arange(len(y), dtype=float)
    slope, start = np.polyfit(k, y, 1)
    residual = y - (start + slope * k)
    return float(slope * k[-1] / start), float(residual.std() / y.mean())


def power_law_exponent(t_s, values) -> float:
    """ν of values ∝ t^(−ν), least squares in log-log over all points (drift coefficient)."""
    slope = np.polyfit(np.log(np.asarray(t_s, dtype=float)), np.log(np.abs(np.asarray(values, dtype=float))), 1)[0]
    return float(-slope)


def crossing_in_log(x, y, level: float) -> float:
    """The first x where y falls to `level`, interpolating ln y against ln x (e.g. the time or
    cycle count at which a window closes to a criterion); NaN if it never does."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    return float(np.exp(first_rise(lx, -ly, -np.log(level))))
