"""The current laws of the cells' selectors and access transistors, compiled (numba), one scalar
function per law.

They are written for one value at a time so that the cell solver (solver/cells.py) can run a
whole bracketed Newton per cell in one compiled loop, with no array temporaries; the devices'
array methods (SinhSelector.current, NmosAccess.drain_current, ...) evaluate the same functions
element by element (`evaluate`). Compiled code is cached on disk beside this file (cache=True);
the laws are inlined into their callers (inline="always": 1.5x faster cell solves on 1T1R 64²).

A device's law() names its law (a key of KINDS) and gives its parameters; `branch` gives the
current from node a to node b and its derivatives with respect to v_a and v_b. numba takes 0.2 s
and ~110 MB of memory to import: the devices and the solver import this module when they first
evaluate a law, so a process that never does (ngspice work, linear arrays) does not pay that.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

SINH, DIODE, DIODE_PAIR, LIMITER, NMOS = range(5)  # the laws' kinds, as the compiled code takes them
KINDS = {"sinh": SINH, "diode": DIODE, "diode_pair": DIODE_PAIR, "limiter": LIMITER, "nmos": NMOS}
SINH_CLAMP = 80.0  # the same clamp as the B-source in models/selectors.lib
EXP_CLAMP = 80.0  # a junction's exponent, at most
GMIN_S = 1e-12  # ngspice's gmin: across every diode junction and every MOSFET's drain junction


@njit(cache=True, inline="always")
def sinh(v, i0, v0):
    """I = i0·sinh(v/v0) [A] and dI/dv [S]; past the clamp the slope keeps its edge value, so
    Newton's Jacobian stays regular."""
    x = v / v0
    if x > SINH_CLAMP:
        x = SINH_CLAMP
    elif x < -SINH_CLAMP:
        x = -SINH_CLAMP
    if abs(x) < 0.5:  # e − 1/e would lose digits to cancellation here
        return i0 * math.sinh(x), i0 / v0 * math.cosh(x)
    e = math.exp(x)  # sinh and cosh from one exp: 1.6x faster, within 4 ulp
    return i0 * (0.5 * (e - 1.0 / e)), i0 / v0 * (0.5 * (e + 1.0 / e))


@njit(cache=True, inline="always")
def junction(v, isat, vte):
    """ngspice's D model at voltage v [V] (thermal voltage × ideality vte [V]): current [A] and
    slope [S], gmin included; below −3·vte ngspice's reverse formula."""
    if v >= -3 * vte:
        ev = math.exp(v / vte if v / vte < EXP_CLAMP else EXP_CLAMP)
        i, g = isat * (ev - 1), isat * ev / vte
    else:
        cube = (3 * vte / (math.e * v)) ** 3
        i, g = -isat * (1 + cube), isat * 3 * cube / v
    return i + GMIN_S * v, g + GMIN_S


@njit(cache=True, inline="always")
def limiter(v, i_pos, i_neg, r_on):
    """I = i·tanh(v/(i·r_on)), i = i_pos for v >= 0 and i_neg below: current [A] and slope [S]."""
    limit = i_pos if v >= 0 else i_neg
    t = math.tanh(v / (limit * r_on))
    return limit * t, (1.0 - t * t) / r_on


@njit(cache=True, inline="always")
def nmos(v_d, v_g, v_s, vto, beta, lam):
    """Shichman-Hodges NMOS, bulk tied to the source, symmetric (for v_d < v_s drain and source
    swap, as in SPICE): current [A] drain -> source and its derivatives d/dv_d, d/dv_s [S]."""
    forward = v_d >= v_s
    hi, lo = (v_d, v_s) if forward else (v_s, v_d)
    vds = hi - lo
    vgst = v_g - lo - vto
    i = gds = gm = 0.0
    if vgst > 0:
        clm = 1 + lam * vds
        if vds >= vgst:  # saturation
            i = 0.5 * beta * clm * vgst**2
            gds = 0.5 * beta * lam * vgst**2
            gm = beta * clm * vgst
        else:
            i = beta * clm * (vgst - 0.5 * vds) * vds
            gds = beta * (lam * (vgst - 0.5 * vds) * vds + clm * (vgst - vds))
            gm = beta * clm * vds
    # derivatives with respect to the high terminal (gds) and the low one (−gds − gm)
    if forward:
        return i + GMIN_S * (v_d - v_s), gds + GMIN_S, -gds - gm - GMIN_S
    return -i + GMIN_S * (v_d - v_s), gds + gm + GMIN_S, -gds - GMIN_S


@njit(cache=True, inline="always")
def branch(kind, p, v_a, v_b, v_g):
    """Current [A] from node a to node b through a device of this kind with parameters p, and
    its derivatives d/dv_a, d/dv_b [S]; v_g: the gate voltage of a transistor (a: its drain)."""
    if kind == NMOS:
        return nmos(v_a, v_g, v_b, p[0], p[1], p[2])
    v = v_a - v_b
    if kind == SINH:
        i, g = sinh(v, p[0], p[1])
    elif kind == LIMITER:
        i, g = limiter(v, p[0], p[1], p[2])
    else:
        i, g = junction(v, p[0], p[1])
        if kind == DIODE_PAIR:
            i_rev, g_rev = junction(-v, p[0], p[1])
            i, g = i - i_rev, g + g_rev
    return i, g, -g


@njit(cache=True)
def solve_in_series(kind, params, cell_g, v_r, v_b, gates, start, has_start, tol_vectors, cells_first, iterations,
                    out_v_m, out_i, out_di_dvr, out_di_dvb):
    """Cells of a memory device (conductance cell_g [S], from v_r to an inner node) in series with a
    device of this kind (from the inner node to v_b): each inner node solved by bracketed Newton
    (rtsafe, see solver/cells.py solve_cells) on arrays (vectors, cells), or (cells, vectors) if
    cells_first; results into the out_ arrays. It lives here, beside the laws it inlines, because
    numba's disk cache is checked against its own file only: a change to a law must recompile it."""
    largest = 0.0  # the rounding level of the voltages: the tolerance's floor
    for i in range(v_r.shape[0]):
        for j in range(v_r.shape[1]):
            largest = max(largest, abs(max(v_r[i, j], v_b[i, j])))
    floor = 1e-14 + 1e-14 * largest
    args = (params, cell_g, v_r, v_b, gates, start, has_start, tol_vectors, floor, cells_first, iterations,
            (out_v_m, out_i, out_di_dvr, out_di_dvb))
    # one loop per kind, the kind a constant in it: its law alone is compiled in (1.3x faster on 1S1R 64²)
    if kind == SINH:
        _solve_each(SINH, args)
    elif kind == NMOS:
        _solve_each(NMOS, args)
    elif kind == LIMITER:
        _solve_each(LIMITER, args)
    elif kind == DIODE:
        _solve_each(DIODE, args)
    else:
        _solve_each(DIODE_PAIR, args)


@njit(cache=True, inline="always")
def _solve_each(kind, args):
    """solve_in_series's loop over the cells, for one kind of device."""
    params, cell_g, v_r, v_b, gates, start, has_start, tol_vectors, floor, cells_first, iterations, out = args
    out_v_m, out_i, out_di_dvr, out_di_dvb = out
    for i in range(v_r.shape[0]):
        for j in range(v_r.shape[1]):
            vector, cell = (j, i) if cells_first else (i, j)
            tol = max(floor, tol_vectors[vector])
            g, vr, vb, gate = cell_g[cell], v_r[i, j], v_b[i, j], gates[i, j]
            lo, hi = min(vr, vb), max(vr, vb)
            vm = min(max(start[i, j], lo), hi) if has_start else 0.5 * (lo + hi)
            step_before = hi - lo
            new = f_new = f_m = f_b = 0.0
            for _ in range(iterations):
                f, f_m, f_b = branch(kind, params, vm, vb, gate)
                resid = g * (vr - vm) - f
                # shrink the bracket with the sign of the residual (decreasing in v_m)
                if resid > 0:
                    lo = vm
                elif resid < 0:
                    hi = vm
                newton = resid / (g + f_m)
                trial = vm + newton
                half, size = 0.5 * (hi - lo), abs(newton)
                bisect = trial < lo or trial > hi or (2 * size > step_before and size > tol)
                new = lo + half if bisect else trial
                f_new = f + f_m * (new - vm)  # f at the new v_m to first order: exact once the step is below tol
                step = half if bisect else size
                if not step >= tol:
                    break
                step_before, vm = step, new
            if not g > 0:
                new = vb
            out_v_m[i, j] = new
            # the current from the less steep of the two branches: rounding of v_m costs the least there
            out_i[i, j] = g * (vr - new) if g <= f_m else f_new
            out_di_dvr[i, j] = g * f_m / (g + f_m)
            out_di_dvb[i, j] = g * f_b / (g + f_m)


@njit(cache=True)
def _branch_each(kind, p, v_a, v_b, v_g, i, d_a, d_b):
    for k in range(len(v_a)):
        i[k], d_a[k], d_b[k] = branch(kind, p, v_a[k], v_b[k], v_g[k])


def as_kernel_array(x) -> np.ndarray:
    """x as the kernels here take it: float64, C-contiguous, writable (numba compiles, and caches, one
    version per array type: a read-only array would cost another compilation)."""
    return np.require(x, dtype=float, requirements=["C", "W"])


def evaluate(law: tuple[str, tuple[float, ...]], v_a, v_b, v_g=0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`branch` for a device's law() on arrays (broadcast together): current, d/dv_a, d/dv_b, each of
    their shape."""
    name, params = law
    shape = np.broadcast_shapes(*(np.shape(x) for x in (v_a, v_b, v_g)))
    flat = [as_kernel_array(x if np.shape(x) == shape else np.broadcast_to(x, shape)).reshape(-1)
            for x in (v_a, v_b, v_g)]
    out = [np.empty(len(flat[0])) for _ in range(3)]
    _branch_each(KINDS[name], as_kernel_array(params), *flat, *out)
    return tuple(x.reshape(shape) for x in out)
