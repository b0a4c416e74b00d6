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
from circuitsim.design import col_path_ohm, own_path_ohm, row_path_ohm

CG_ITER = 1000  # conjugate-gradient iterations per Newton step, at most
FORCING_MAX = 0.1  # each step's CG residual relative to ρ (Eisenstat-Walker), at most ...
FORCING_MIN = 1e-12  # ... and at least
SINH_LIMIT = 80.0  # |v/v0| past which devices/laws.py clamps the selector's law: not solved here
LINE_SEARCH_TRIES = 12
CG_ERROR_GAIN = 10.0  # a step's relative error, taken as this times CG's relative residual (the diagonally
# preconditioned W + H has a condition number of a few at 2 Ω: its eigenvalues spread little)


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
        # row segment j feeds cells j.., column segment i carries cells ..i; W's diagonal
        self.r_row, self.r_col, self.w_diag = row_path_ohm(xb), col_path_ohm(xb), own_path_ohm(xb)
        g = circuit.cell_g.reshape(xb.shape)
        self.on = g > 0
        self.inv_g = np.divide(1.0, g, out=np.zeros(xb.shape), where=self.on)
        self.i0, self.v0 = xb.selector.law()[1]
        kinds = circuit.fixed_kind
        # each line's source among the circuit's sources, in line order
        self.rows_at, self.cols_at = (np.flatnonzero(kinds == k)[np.argsort(circuit.fixed_line[kinds == k])]
                                      for k in (0, 1))

    def solve(self, fixed_volts: np.ndarray, port_rtol: float, newton_iter: int,
              max_step_v: float) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (batch, nodes) of the wire and inner nodes, and which vectors were solved
        (their rows of the voltages are NaN otherwise) within newton_iter Newton iterations each,
        no step moving a selector's voltage by more than max_step_v [V] (to first order). A vector
        is done when its last Newton step leaves every row's and column's current within port_rtol
        of its value."""
        circuit, rows_cols = self.circuit, self.on.shape
        batch = len(fixed_volts)
        v_rows = np.ascontiguousarray(fixed_volts[:, self.rows_at])
        v_cols = np.ascontiguousarray(fixed_volts[:, self.cols_at])
        cell_i, row_v, col_v = (np.empty((batch, *rows_cols)) for _ in range(3))
        solved = np.zeros(batch, dtype=np.bool_)
        self.iterations = np.zeros((batch, 2), dtype=np.int64)  # Newton, CG: the last batch's, for diagnosis
        _solve_batch(v_rows, v_cols, self.r_row, self.r_col, self.inv_g, self.on, self.w_diag, self.i0, self.v0,
                     port_rtol, newton_iter, max_step_v, cell_i, row_v, col_v, solved, self.iterations)
        v = np.full((batch, circuit.n_nodes), np.nan)
        # merged nodes (0 Ω segments) are written more than once, with the same voltage to rounding
        v[:, circuit.row_node.ravel()] = row_v.reshape(batch, -1)
        v[:, circuit.col_node.ravel()] = col_v.reshape(batch, -1)
        inner = np.where(self.on, row_v - cell_i * self.inv_g, col_v)
        v[:, circuit.inner_node.ravel()] = inner.reshape(batch, -1)
        v[:, circuit.fixed] = fixed_volts
        v[~solved] = np.nan
        return v, solved


@njit(cache=True)
def _solve_batch(v_rows, v_cols, r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol, newton_iter, max_step_v, out_i,
                 out_row_v, out_col_v, solved, iterations):
    """Each vector's own Newton (see the module docstring); the row- and column-wire voltages at
    every cell and the cell currents into the out_ arrays (batch, rows, cols), whether it converged
    into solved, its Newton and CG iterations into iterations (batch, 2)."""
    rows, cols = on.shape
    work = np.empty((14, rows, cols))
    acc = np.empty(cols)
    for k in range(v_rows.shape[0]):
        solved[k] = _solve_vector(v_rows[k], v_cols[k], r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol,
                                  newton_iter, max_step_v, out_i[k], out_row_v[k], out_col_v[k], work, acc,
                                  iterations[k])


@njit(cache=True)
def _solve_vector(v_row, v_col, r_row, r_col, inv_g, on, w_diag, i0, v0, port_rtol, newton_iter, max_step_v, cell_i,
                  row_v, col_v, work, acc, iterations):
    """One vector's inexact Newton (CG to an Eisenstat-Walker forcing term, then a line search);
    False if it runs out of iterations or leaves the selector law's range."""
    sel, rho, slope, step, r, z, p = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    q, trial, trial_sel, rho_t, slope_t, drop_r, drop_c = work[7], work[8], work[9], work[10], work[11], \
        work[12], work[13]
    _start(v_row, v_col, inv_g, on, i0, v0, cell_i, sel)
    if not _residual(cell_i, sel, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, drop_r, drop_c, acc):
        return False
    norm_before = 0.0
    for it in range(newton_iter):
        norm = math.sqrt(_dot(rho, rho))
        forcing = FORCING_MAX
        if it > 0:
            forcing = min(FORCING_MAX, max(FORCING_MIN, 0.9 * (norm / norm_before) ** 2))
        norm_before = norm
        used, reached = _conjugate_gradients(rho, slope, r_row, r_col, w_diag, on, forcing * norm, step, r, z, p, q,
                                             drop_r, drop_c, acc)
        iterations[0] += 1
        if used < 0:
            return False
        iterations[1] += used
        finished = _finished(cell_i, step, CG_ERROR_GAIN * reached / max(norm, 1e-300), i0, port_rtol, acc)
        # a finished vector takes its step whole: its caller solves the cells at the result anyway
        t = 1.0 if finished else _line_search(cell_i, sel, step, _step_limit(cell_i, step, i0, v0, max_step_v), rho,
                                              v_row, v_col, r_row, r_col, inv_g, on, i0, v0, trial, trial_sel, rho_t,
                                              slope_t, drop_r, drop_c, acc)
        if not t > 0.0:
            return False
        _update(cell_i, sel, t, step, i0, cell_i, sel)
        if finished:
            _wire_volts(cell_i, v_row, v_col, r_row, r_col, drop_r, drop_c, acc, row_v, col_v)
            return True
        rho[:] = rho_t
        slope[:] = slope_t
    return False


@njit(cache=True)
def _start(v_row, v_col, inv_g, on, i0, v0, cell_i, sel):
    """A start above every cell's current with no wire drop (its full drive u across it): the
    device in series with the selector's chord conductance at u, i0·sinh(|u|/v0)/|u| (at its true,
    lower voltage the selector's chord conductance is lower: sinh is convex). Newton's steps
    from there move the selectors' voltages down without overshoot (see _update); solving each
    cell's h(I) = u first cost 4x the rest of a 64² solve and saved no Newton iteration (measured)."""
    rows, cols = on.shape
    for i in range(rows):
        for j in range(cols):
            u = v_row[i] - v_col[j]
            if not on[i, j] or u == 0.0:
                cell_i[i, j] = sel[i, j] = 0.0
                continue
            size = abs(u)
            chord = i0 * math.sinh(min(size / v0, SINH_LIMIT)) / size
            cell_i[i, j] = u / (inv_g[i, j] + 1.0 / chord)
            sel[i, j] = math.asinh(cell_i[i, j] / i0)


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
def _residual(cell_i, sel, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho, slope, drop_r, drop_c, acc):
    """ρ and h′(I) at the cell currents (sel: asinh(I/i0), kept beside them); False where a selector
    is past its law's clamp."""
    _wire_drops(cell_i, r_row, r_col, drop_r, drop_c, acc)
    rows, cols = on.shape
    for i in range(rows):
        for j in range(cols):
            x = cell_i[i, j]
            if not on[i, j]:
                rho[i, j], slope[i, j] = 0.0, 1.0
                continue
            if abs(sel[i, j]) >= SINH_LIMIT:
                return False
            rho[i, j] = v_row[i] - v_col[j] - drop_r[i, j] - drop_c[i, j] - x * inv_g[i, j] - v0 * sel[i, j]
            slope[i, j] = inv_g[i, j] + v0 / math.sqrt(x * x + i0 * i0)
    return True


@njit(cache=True)
def _update(cell_i, sel, t, step, i0, out_i, out_sel):
    """The cell currents moved by t·step (into out_i, out_sel; may be cell_i, sel), each cell along
    the side of its law that does not overshoot: a current growing in size moves by t·step (h is
    concave in |I|: Newton from below stays below), one shrinking moves its selector's voltage
    v0·asinh(I/i0) by t·step·h_sel′(I) (the current is convex in that voltage: Newton from above
    stays above). Both agree with the step to first order; along the selector's exponential, plain
    steps from above land far below the root and crawl back (13 Newton iterations at 256², 2 Ω,
    instead of 7)."""
    for i in range(cell_i.shape[0]):
        for j in range(cell_i.shape[1]):
            x, dx = cell_i[i, j], t * step[i, j]
            if x * dx < 0.0:
                out_sel[i, j] = sel[i, j] + dx / math.sqrt(x * x + i0 * i0)
                out_i[i, j] = i0 * math.sinh(out_sel[i, j])
            else:
                out_i[i, j] = x + dx
                out_sel[i, j] = math.asinh(out_i[i, j] / i0)


@njit(cache=True)
def _conjugate_gradients(rhs, slope, r_row, r_col, w_diag, on, goal, x, r, z, p, q, drop_r, drop_c, acc):
    """x with (W + H)·x = rhs to a residual norm of goal, by CG with (W + H)'s diagonal as
    preconditioner (off cells: x = 0). Returns the iterations it took (−1 if CG_ITER do not get
    there) and the residual norm reached."""
    rows, cols = on.shape
    x[:] = 0.0
    r[:] = rhs
    rz = 0.0
    for i in range(rows):
        for j in range(cols):
            z[i, j] = r[i, j] / (slope[i, j] + w_diag[i, j]) if on[i, j] else 0.0
            rz += r[i, j] * z[i, j]
    start = math.sqrt(_dot(r, r))
    if start <= goal:
        return 0, start
    p[:] = z
    for k in range(CG_ITER):
        _wire_drops(p, r_row, r_col, drop_r, drop_c, acc)
        pq = 0.0
        for i in range(rows):
            for j in range(cols):
                q[i, j] = drop_r[i, j] + drop_c[i, j] + slope[i, j] * p[i, j] if on[i, j] else 0.0
                pq += p[i, j] * q[i, j]
        if not pq > 0.0:
            return -1, math.inf
        alpha = rz / pq
        rr = 0.0
        for i in range(rows):
            for j in range(cols):
                x[i, j] += alpha * p[i, j]
                r[i, j] -= alpha * q[i, j]
                rr += r[i, j] * r[i, j]
        if math.sqrt(rr) <= goal:
            return k + 1, math.sqrt(rr)
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
    return -1, math.inf


@njit(cache=True)
def _line_search(cell_i, sel, step, t_max, rho, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, trial, trial_sel, rho_t,
                 slope_t, drop_r, drop_c, acc):
    """t in (0, t_max] for the step (0: the law's range was left), with ρ and h′ there in rho_t, slope_t.

    The cell equations are the gradient of a convex energy (½IᵀWI + Σ∫h − Σ u·I), so its slope
    along the step, −ρ·step, rises as the step is taken; a full step that overshoots the minimum
    (slope above the starting one's size) is cut back by regula falsi on that slope, as dc.py's
    line search does on the node voltages."""
    slope0 = -_dot(rho, step)
    _update(cell_i, sel, t_max, step, i0, trial, trial_sel)
    if not _residual(trial, trial_sel, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r,
                     drop_c, acc):
        return 0.0
    slope1 = -_dot(rho_t, step)
    if not (slope0 < 0.0 and slope1 > -slope0):
        return t_max
    lo, s_lo, hi, s_hi = 0.0, slope0, t_max, slope1
    best = t = t_max  # the longest step is kept if no point below the minimum is found
    for _ in range(LINE_SEARCH_TRIES):
        width = hi - lo
        t = min(max(lo - s_lo * width / (s_hi - s_lo), lo + 0.05 * width), hi - 0.05 * width)
        _update(cell_i, sel, t, step, i0, trial, trial_sel)
        if not _residual(trial, trial_sel, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r,
                         drop_c, acc):
            return 0.0
        s_t = -_dot(rho_t, step)
        if s_t <= 0.0:
            lo, s_lo, best = t, s_t, t
            if s_t > -0.5 * abs(slope0):
                break
        else:
            hi, s_hi = t, s_t
    if best != t:  # the last point tried is past the minimum: back to the best one
        _update(cell_i, sel, best, step, i0, trial, trial_sel)
        if not _residual(trial, trial_sel, v_row, v_col, r_row, r_col, inv_g, on, i0, v0, rho_t, slope_t, drop_r,
                         drop_c, acc):
            return 0.0
    return best


@njit(cache=True)
def _step_limit(cell_i, step, i0, v0, max_step_v):
    """The largest t ≤ 1 for which t·step moves no selector's voltage by more than max_step_v, to
    first order: far from the solution (wires as resistive as the cells) a full step could take a
    selector past the clamp of its law."""
    largest = 0.0
    for i in range(cell_i.shape[0]):
        for j in range(cell_i.shape[1]):
            x = cell_i[i, j]
            largest = max(largest, abs(step[i, j]) / math.sqrt(x * x + i0 * i0))
    return min(1.0, max_step_v / max(v0 * largest, 1e-300))


@njit(cache=True)
def _finished(cell_i, step, cg_error, i0, port_rtol, acc):
    """Whether, once this step is taken, every row's and column's current is within port_rtol of
    its value (or of rounding of the largest): each cell's error after the step is taken as its
    share of CG's relative error, cg_error·|step|, plus Newton's quadratic term, |step|²/|I| (the
    selector's law changes on the scale of the current itself; i0 below it)."""
    rows, cols = cell_i.shape
    largest = 0.0
    for i in range(rows):
        line = 0.0
        for j in range(cols):
            line += cell_i[i, j]
        largest = max(largest, abs(line))
    floor = 1e-15 * largest
    acc[:] = 0.0
    for i in range(rows):
        line, error = 0.0, 0.0
        for j in range(cols):
            size = abs(step[i, j])
            cell_error = size * (cg_error + size / max(abs(cell_i[i, j]), i0))
            line += cell_i[i, j]
            error += cell_error
            acc[j] += cell_error
        if error > port_rtol * abs(line) + floor:
            return False
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
