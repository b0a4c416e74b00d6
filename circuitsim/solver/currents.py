"""1S1R arrays with a sinh selector, solved for their cell currents instead of their node voltages.

With every row driven at its first cell's end and every column sensed at its last row's end (no
floating line), Kirchhoff's current law on the wires holds by construction when the unknowns are
the cell currents I [A]: a wire segment carries a running sum of cell currents, and its voltage
drop is that times its resistance. What is left is each cell's own law,

    ρ = v_row − v_col − W·I − h(I) = 0,   h(I) = I/g + v0·asinh(I/i0),

W·I [V] being the wire drops (W symmetric positive semidefinite, applied by running sums) and
h(I) the voltage a cell needs to carry I. Newton's matrix W + H (H = diag h′(I) ≥ 1/g) is
symmetric positive definite and, with cells of kΩ and wires of Ω, well conditioned: conjugate
gradients with its diagonal as preconditioner solve a step in tens of passes over the cells, with
no factorization (the node-voltage system of dc.py needs one: its wires conduct 1e4 times more
than its cells). Each vector runs its own Newton in one compiled call, so its arrays stay in the
CPU's cache. A vector this path cannot finish (out of CG or Newton iterations, e.g. wires far
more resistive than the cells) is handed back, and dc.py's general Newton solves it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from circuitsim.circuit import Circuit

NEWTON_ITER = 50  # Newton iterations per vector, at most
CG_ITER = 1000  # conjugate-gradient iterations per Newton step, at most
FORCING_MAX = 0.1  # each step's CG residual relative to ρ (Eisenstat-Walker), at most ...
FORCING_MIN = 1e-12  # ... and at least
SINH_LIMIT = 80.0  # |v/v0| past which devices/laws.py clamps the selector's law: not solved here
LINE_SEARCH_TRIES = 12


def applies(circuit: Circuit) -> bool:
    """Whether the circuit is what this path solves: a sinh selector in every cell, every line
    driven or sensed at its usual end, no node without a path to a source."""
    xb = circuit.xb
    return (xb.selector is not None and xb.selector.law()[0] == "sinh" and not circuit.floating_rows.any()
            and not circuit.floating_cols.any() and not circuit.dead.any())


class CurrentSystem:
    """The input-independent parts of one design's cell equations, and the solve of a batch."""

    def __init__(self, circuit: Circuit):
        xb = circuit.xb
        self.circuit = circuit
        self.r_row = np.array(xb.r_row, dtype=float)  # segment j feeds cell j; the driver's in segment 0
        self.r_row[:, 0] += xb.r_driver
        self.r_col = np.array(xb.r_col, dtype=float)  # segment i carries cells 0..i; the sense's in the last
        self.r_col[-1, :] += xb.r_sense
        g = circuit.cell_g.reshape(xb.shape)
        self.on = g > 0
        self.inv_g = np.divide(1.0, g, out=np.zeros(xb.shape), where=self.on)
        # W's diagonal: each cell's own path to its driver and to its sense
        self.w_diag = np.cumsum(self.r_row, axis=1) + np.cumsum(self.r_col[::-1], axis=0)[::-1]
        self.i0, self.v0 = xb.selector.law()[1]
        kinds = circuit.fixed_kind
        self.rows_at = np.argsort(circuit.fixed_line[kinds == 0])  # the driven lines in row order
        self.cols_at = np.flatnonzero(kinds == 1)[np.argsort(circuit.fixed_line[kinds == 1])]

    def solve(self, fixed_volts: np.ndarray, port_rtol: float) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (batch, nodes) of the wire and inner nodes, and which vectors were solved
        (their rows of the voltages are NaN otherwise). A vector is done when its last Newton step
        changed every row's and column's current by less than port_rtol of it."""
        circuit, rows_cols = self.circuit, self.on.shape
        batch = len(fixed_volts)
        v_rows = np.ascontiguousarray(fixed_volts[:, self.rows_at])
        v_cols = np.ascontiguousarray(fixed_volts[:, self.cols_at])
        cell_i, row_v, col_v = (np.empty((batch, *rows_cols)) for _ in range(3))
        solved = np.zeros(batch, dtype=np.bool_)
        _solve_batch(v_rows, v_cols, self.r_row, self.r_col, self.inv_g, self.on, self.w_diag, self.i0, self.v0,
                     port_rtol, cell_i, row_v, col_v, solved)
        v = np.full((batch, circuit.n_nodes), np.nan)
        # merged nodes (0 Ω segments) are written more than once, with the same voltage
        v[:, circuit.row_node.ravel()] = row_v.reshape(batch, -1)
        v[:, circuit.col_node.ravel()] = col_v.reshape(batch, -1)
        inner = np.where(self.on, row_v - cell_i * self.inv_g, col_v)
        v[:, circuit.inner_node.ravel()] = inner.reshape(batch, -1)
        v[:, circuit.fixed] = fixed_volts
        v[~solved] = np.nan
        return v, solved


@njit(cache=True)
def _solve_batch(v_rows, v_cols, r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol, out_i, out_row_v, out_col_v,
                 solved):
    """Each vector's own Newton (see the module docstring); the row- and column-wire voltages at
    every cell and the cell currents into the out_ arrays (batch, rows, cols)."""
    rows, cols = on.shape
    work = np.empty((12, rows, cols))
    acc = np.empty(cols)
    for k in range(v_rows.shape[0]):
        solved[k] = _solve_vector(v_rows[k], v_cols[k], r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol,
                                  out_i[k], out_row_v[k], out_col_v[k], work, acc)


@njit(cache=True)
def _solve_vector(v_row, v_col, r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol, cell_i, row_v, col_v, work, acc):
    rows, cols = on.shape
    rho, slope, step, r, z, p, q = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    trial, rho_t, slope_t, drop_r, drop_c = work[7], work[8], work[9], work[10], work[11]
    _start(v_row, v_col, inv_g, on, i0, v0, cell_i)
    if not _residual(cell_i, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, drop_r, drop_c, acc):
        return False
    norm_before = 0.0
    for it in range(NEWTON_ITER):
        norm = math.sqrt(_dot(rho, rho))
        if norm == 0.0:
            break
        forcing = FORCING_MAX
        if it > 0:
            forcing = min(FORCING_MAX, max(FORCING_MIN, 0.9 * (norm / norm_before) ** 2))
        norm_before = norm
        if not _conjugate_gradients(rho, slope, r_row, r_col, w_diag, on, forcing * norm, step, r, z, p, q,
                                    drop_r, drop_c, acc):
            return False
        if _small_step(cell_i, step, port_rtol, acc):  # taken whole: the caller solves the cells there anyway
            _add(cell_i, 1.0, step, cell_i)
            _wire_volts(cell_i, v_row, v_col, r_row, r_col, drop_r, drop_c, acc, row_v, col_v)
            return True
        if not _line_search(cell_i, step, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, trial,
                            rho_t, slope_t, drop_r, drop_c, acc):
            return False
    return False


@njit(cache=True)
def _start(v_row, v_col, inv_g, on, i0, v0, cell_i):
    """A start above every cell's current with no wire drop (its full drive u across it): the
    device in series with the selector's chord conductance at u, i0·sinh(|u|/v0)/|u| (at its true,
    lower voltage the selector's chord conductance is lower: sinh is convex). Newton's first step
    from there lands close below the root (h is concave in I > 0); solving each cell's h(I) = u
    first cost 4x the rest of a 64² solve and saved no Newton iteration (measured)."""
    rows, cols = on.shape
    for i in range(rows):
        for j in range(cols):
            u = v_row[i] - v_col[j]
            if not on[i, j] or u == 0.0:
                cell_i[i, j] = 0.0
                continue
            size = abs(u)
            chord = i0 * math.sinh(min(size / v0, SINH_LIMIT)) / size
            cell_i[i, j] = u / (inv_g[i, j] + 1.0 / chord)


@njit(cache=True)
def _wire_drops(x, r_row, r_col, drop_r, drop_c, acc):
    """W·x split in two: the row wire's drop from the driver to each cell (drop_r) and the column
    wire's rise from the sense to each cell (drop_c), for cell currents x."""
    rows, cols = x.shape
    for i in range(rows):
        through = 0.0
        for j in range(cols - 1, -1, -1):
            through += x[i, j]
            drop_r[i, j] = through * r_row[i, j]
        total = 0.0
        for j in range(cols):
            total += drop_r[i, j]
            drop_r[i, j] = total
    acc[:] = 0.0
    for i in range(rows):
        for j in range(cols):
            acc[j] += x[i, j]
            drop_c[i, j] = acc[j] * r_col[i, j]
    acc[:] = 0.0
    for i in range(rows - 1, -1, -1):
        for j in range(cols):
            acc[j] += drop_c[i, j]
            drop_c[i, j] = acc[j]


@njit(cache=True)
def _residual(cell_i, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, drop_r, drop_c, acc):
    """ρ and h′(I) at the cell currents; False where a current is past the law's clamp."""
    _wire_drops(cell_i, r_row, r_col, drop_r, drop_c, acc)
    rows, cols = on.shape
    limit = i0 * math.sinh(SINH_LIMIT)
    for i in range(rows):
        for j in range(cols):
            x = cell_i[i, j]
            if not on[i, j]:
                rho[i, j], slope[i, j] = 0.0, 1.0
                continue
            if abs(x) >= limit:
                return False
            needed = x * inv_g[i, j] + v0 * math.asinh(x / i0)
            rho[i, j] = v_row[i] - v_col[j] - drop_r[i, j] - drop_c[i, j] - needed
            slope[i, j] = inv_g[i, j] + v0 / math.sqrt(x * x + i0 * i0)
    return True


@njit(cache=True)
def _conjugate_gradients(rhs, slope, r_row, r_col, w_diag, on, goal, x, r, z, p, q, drop_r, drop_c, acc):
    """x with (W + H)·x = rhs to a residual norm of goal, by CG with (W + H)'s diagonal as
    preconditioner (off cells: x = 0); False if CG_ITER iterations do not get there."""
    rows, cols = on.shape
    x[:] = 0.0
    r[:] = rhs
    rz = 0.0
    for i in range(rows):
        for j in range(cols):
            z[i, j] = r[i, j] / (slope[i, j] + w_diag[i, j]) if on[i, j] else 0.0
            rz += r[i, j] * z[i, j]
    p[:] = z
    for _ in range(CG_ITER):
        _wire_drops(p, r_row, r_col, drop_r, drop_c, acc)
        pq = 0.0
        for i in range(rows):
            for j in range(cols):
                q[i, j] = drop_r[i, j] + drop_c[i, j] + slope[i, j] * p[i, j] if on[i, j] else 0.0
                pq += p[i, j] * q[i, j]
        if not pq > 0.0:
            return pq == 0.0 and rz == 0.0
        alpha = rz / pq
        rr = 0.0
        for i in range(rows):
            for j in range(cols):
                x[i, j] += alpha * p[i, j]
                r[i, j] -= alpha * q[i, j]
                rr += r[i, j] * r[i, j]
        if math.sqrt(rr) <= goal:
            return True
        rz_next = 0.0
        for i in range(rows):
            for j in range(cols):
                z[i, j] = r[i, j] / (slope[i, j] + w_diag[i, j]) if on[i, j] else 0.0
                rz_next += r[i, j] * z[i, j]
        beta = rz_next / rz
        rz = rz_next
        for i in range(rows):
            for j in range(cols):
                p[i, j] = z[i, j] + beta * p[i, j]
    return False


@njit(cache=True)
def _line_search(cell_i, step, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, trial, rho_t, slope_t,
                 drop_r, drop_c, acc):
    """cell_i + t·step, t in (0, 1], with ρ and h′ there (into rho, slope; step scaled to t·step).

    The cell equations are the gradient of a convex energy (½IᵀWI + Σ∫h − Σ u·I), so its slope
    −ρ(I + t·step)·step rises with t; a full step that overshoots the minimum along the line
    (slope above the starting one's size) is cut back by regula falsi on that slope, as dc.py's
    line search does on the node voltages."""
    slope0 = -_dot(rho, step)
    _add(cell_i, 1.0, step, trial)
    if not _residual(trial, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r, drop_c, acc):
        return False
    slope1 = -_dot(rho_t, step)
    t = 1.0
    if slope0 < 0.0 and slope1 > -slope0:
        lo, s_lo, hi, s_hi = 0.0, slope0, 1.0, slope1
        best = 1.0  # kept if no point below the minimum is found
        for _ in range(LINE_SEARCH_TRIES):
            width = hi - lo
            t = min(max(lo - s_lo * width / (s_hi - s_lo), lo + 0.05 * width), hi - 0.05 * width)
            _add(cell_i, t, step, trial)
            if not _residual(trial, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r,
                             drop_c, acc):
                return False
            s_t = -_dot(rho_t, step)
            if s_t <= 0.0:
                lo, s_lo, best = t, s_t, t
                if s_t > -0.5 * abs(slope0):
                    break
            else:
                hi, s_hi = t, s_t
        if best != t:  # the last point tried is past the minimum: back to the best one
            t = best
            _add(cell_i, t, step, trial)
            if not _residual(trial, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r,
                             drop_c, acc):
                return False
        step *= t
    cell_i[:] = trial
    rho[:] = rho_t
    slope[:] = slope_t
    return True


@njit(cache=True)
def _small_step(cell_i, step, port_rtol, acc):
    """Whether the step changed every row's and column's current by less than port_rtol of it (or
    than rounding of the largest current)."""
    rows, cols = cell_i.shape
    largest = 0.0
    for i in range(rows):
        line = 0.0
        for j in range(cols):
            line += cell_i[i, j]
        largest = max(largest, abs(line))
    floor = 1e-15 * largest
    for i in range(rows):
        line, change = 0.0, 0.0
        for j in range(cols):
            line += cell_i[i, j]
            change += abs(step[i, j])
        if change > port_rtol * abs(line) + floor:
            return False
    acc[:] = 0.0
    for i in range(rows):
        for j in range(cols):
            acc[j] += abs(step[i, j])
    for j in range(cols):
        column = 0.0
        for i in range(rows):
            column += cell_i[i, j]
        if acc[j] > port_rtol * abs(column) + floor:
            return False
    return True


@njit(cache=True)
def _wire_volts(cell_i, v_row, v_col, r_row, r_col, drop_r, drop_c, acc, row_v, col_v):
    """The row- and column-wire voltage at every cell for these cell currents."""
    _wire_drops(cell_i, r_row, r_col, drop_r, drop_c, acc)
    rows, cols = cell_i.shape
    for i in range(rows):
        for j in range(cols):
            row_v[i, j] = v_row[i] - drop_r[i, j]
            col_v[i, j] = v_col[j] + drop_c[i, j]


@njit(cache=True)
def _dot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j] * b[i, j]
    return total


@njit(cache=True)
def _add(a, t, b, out):
    """out = a + t·b (out may be a)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] + t * b[i, j]
