"""1S1R arrays with a sinh selector and 1T1R arrays, solved for their cell currents instead of their
node voltages.

With every row driven at its first cell's end and every column sensed at its last row's end (no
floating line), Kirchhoff's current law on the wires holds by construction when the unknowns are
the cell currents I [A]: a wire segment carries a running sum of cell currents, and its voltage
drop is that times its resistance. What is left is each cell's own law. For a sinh selector,

    ρ = v_row − v_col − W·I − h(I) = 0,   h(I) = I/g + v0·asinh(I/i0),

W·I [V] being the wire drops (W symmetric positive semidefinite, applied by running sums) and
h(I) the voltage a cell needs to carry I. Newton's matrix W + H (H = diag h′(I) ≥ 1/g) is
symmetric positive definite and, with cells of kΩ and wires of Ω, well conditioned: conjugate
gradients with its diagonal as preconditioner solve a step in tens of passes over the cells, with
no factorization (the node-voltage system of dc.py needs one: its wires conduct 1e4 times more
than its cells). Each vector runs its own Newton in one compiled call, so its arrays stay in the
CPU's cache. A transistor's cell has no closed form h(I): its current at given wire voltages comes
from solve_cells, and its Newton matrix is not symmetric (see TransistorCurrents). A vector either
path cannot finish (out of iterations, e.g. wires far more resistive than the cells) is handed
back, and dc.py's general Newton solves it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from circuitsim.circuit import Circuit
from circuitsim.design import col_path_ohm, own_path_ohm, row_path_ohm
from circuitsim.solver.cells import predict_inner, solve_cells

CG_ITER = 1000  # conjugate-gradient iterations per Newton step, at most
FORCING_MAX = 0.1  # each step's CG residual relative to ρ (Eisenstat-Walker), at most ...
FORCING_MIN = 1e-12  # ... and at least
SINH_LIMIT = 80.0  # |v/v0| past which devices/laws.py clamps the selector's law: not solved here
LINE_SEARCH_TRIES = 12
# the cells' inner nodes at each Newton point of the transistor path solved to this fraction of the step's
# largest wire-voltage change: the last step is only as exact as its ρ (with dc.py's 1e-2, lines of 0.4 %
# of the largest current ended up to 1.6e-7 off; this costs 5 % of a 64² batch) ...
CELL_TOL_FRACTION = 1e-4
START_TOL_FRACTION = 1e-2  # ... and at the start to this fraction of the drive (the first step is never the last)
KRYLOV_DIM = 20  # GMRES iterations per Newton step of the transistor cells, at most
KRYLOV_ERROR_GAIN = 10.0  # ... and their step's relative error, taken as this times GMRES's relative residual
CG_ERROR_GAIN = 10.0  # a step's relative error, taken as this times CG's relative residual (the diagonally
# preconditioned W + H has a condition number of a few at 2 Ω: its eigenvalues spread little)


def system_for(circuit: Circuit) -> SinhCurrents | TransistorCurrents | None:
    """The cell-current solve of this circuit, None where it has none: every line must be driven
    or sensed at its usual end, every node have a path to a source, and the cells hold a sinh
    selector or an access transistor."""
    xb = circuit.xb
    if circuit.floating_rows.any() or circuit.floating_cols.any() or circuit.dead.any():
        return None
    if xb.selector is not None and xb.selector.law()[0] == "sinh":
        return SinhCurrents(circuit)
    return TransistorCurrents(circuit) if xb.transistor is not None else None


class _CellCurrents:
    """What both solves share: the wire paths, and the node voltages a batch of cell currents gives."""

    def __init__(self, circuit: Circuit):
        xb = circuit.xb
        self.circuit = circuit
        # row segment j feeds cells j.., column segment i carries cells ..i; W's diagonal
        self.r_row, self.r_col, self.w_diag = row_path_ohm(xb), col_path_ohm(xb), own_path_ohm(xb)
        kinds = circuit.fixed_kind
        # each line's source among the circuit's sources, in line order
        self.rows_at, self.cols_at = (np.flatnonzero(kinds == k)[np.argsort(circuit.fixed_line[kinds == k])]
                                      for k in (0, 1))

    def _node_volts(self, fixed_volts: np.ndarray, row_v: np.ndarray, col_v: np.ndarray, inner: np.ndarray,
                    solved: np.ndarray) -> np.ndarray:
        """Node voltages (batch, nodes) from the row- and column-wire voltages and the inner nodes at
        every cell (batch, rows, cols); NaN rows for the vectors not solved."""
        circuit, batch = self.circuit, len(fixed_volts)
        v = np.full((batch, circuit.n_nodes), np.nan)
        # merged nodes (0 Ω segments) are written more than once, with the same voltage to rounding
        v[:, circuit.row_node.ravel()] = row_v.reshape(batch, -1)
        v[:, circuit.col_node.ravel()] = col_v.reshape(batch, -1)
        v[:, circuit.inner_node.ravel()] = inner.reshape(batch, -1)
        v[:, circuit.fixed] = fixed_volts
        v[~solved] = np.nan
        return v


class SinhCurrents(_CellCurrents):
    """1S1R cells with a sinh selector: each vector's Newton compiled whole (see the module docstring)."""

    def __init__(self, circuit: Circuit):
        super().__init__(circuit)
        g = circuit.cell_g.reshape(circuit.xb.shape)
        self.on = g > 0
        self.inv_g = np.divide(1.0, g, out=np.zeros(g.shape), where=self.on)
        self.i0, self.v0 = circuit.xb.selector.law()[1]

    def solve(self, fixed_volts: np.ndarray, gates, opts, port_rtol: float) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (batch, nodes) of the wire and inner nodes, and which vectors were solved
        (their rows of the voltages are NaN otherwise) within opts.shared_iter Newton iterations each,
        no step moving a selector's voltage by more than opts.max_step_v [V] (to first order). A
        vector is done when its last Newton step leaves every row's and column's current within
        port_rtol of its value. opts: the solver's options (dc.NewtonOptions); gates: unused (None)."""
        rows_cols, batch = self.on.shape, len(fixed_volts)
        v_rows = np.ascontiguousarray(fixed_volts[:, self.rows_at])
        v_cols = np.ascontiguousarray(fixed_volts[:, self.cols_at])
        cell_i, row_v, col_v = (np.empty((batch, *rows_cols)) for _ in range(3))
        solved = np.zeros(batch, dtype=np.bool_)
        self.iterations = np.zeros((batch, 2), dtype=np.int64)  # Newton, CG: the last batch's, for diagnosis
        _solve_batch(v_rows, v_cols, self.r_row, self.r_col, self.inv_g, self.on, self.w_diag, self.i0, self.v0,
                     port_rtol, opts.shared_iter, opts.max_step_v, cell_i, row_v, col_v, solved, self.iterations)
        inner = np.where(self.on, row_v - cell_i * self.inv_g, col_v)
        return self._node_volts(fixed_volts, row_v, col_v, inner, solved), solved


class TransistorCurrents(_CellCurrents):
    """1T1R cells: one Newton on the cell currents of a whole batch at once, ρ = F(v_row − W_r·I,
    v_col + W_c·I) − I = 0, F being each cell's current at its wire voltages (device and transistor
    in series, its inner node solved by solve_cells: the laws stay where they are compiled). Newton's
    matrix 1 + D_r·W_r + D_c·W_c (D_r = dF/dv_r, D_c = −dF/dv_b ≥ 0, W_r and W_c the row and column
    wires' drops) is not symmetric: GMRES solves each vector's step (compiled, _gmres), preconditioned
    by its diagonal. From I = 0, each cell at its full drive, Newton takes 3 iterations on the 64²
    benchmark batch and 4-5 at 256² (2 Ω segments); Armijo's backtracking on |ρ| guards each step.
    A vector is done when its step, taken, leaves every line's current within port_rtol, the step's
    error taken from GMRES's residual and the contraction Newton has shown so far. Arrays here are
    (batch, rows, cols)."""

    def __init__(self, circuit: Circuit):
        super().__init__(circuit)
        self.row_own = np.cumsum(self.r_row, axis=1)  # each cell's path to its driver [Ω]
        self.col_own = self.w_diag - self.row_own  # ... and to its sense [Ω]
        g = circuit.cell_g.reshape(self.r_row.shape)
        self.g_ratio = np.divide(1.0, g, out=np.zeros(g.shape), where=g > 0)

    def _drops(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The row wire's drop and the column wire's rise at every cell for cell currents x."""
        drop_r, drop_c = np.empty_like(x), np.empty_like(x)
        _wire_drops_each(x, self.r_row, self.r_col, drop_r, drop_c)
        return drop_r, drop_c

    def _wire_volts(self, cell_i, v_rows, v_cols) -> tuple[np.ndarray, np.ndarray]:
        """Row- and column-wire voltages at every cell for cell currents cell_i and line voltages
        v_rows (batch, rows), v_cols (batch, cols)."""
        drop_r, drop_c = self._drops(cell_i)
        return v_rows[:, :, None] - drop_r, v_cols[:, None, :] + drop_c

    def _cells(self, cell_i, v_rows, v_cols, gates, v_m, tol_v, opts):
        """ρ and the cells' inner nodes and derivatives dF/dv_r, dF/dv_b at cell currents cell_i
        (v_m: a guess for the inner nodes; tol_v: their tolerance, (batch,), see solve_cells)."""
        batch, shape = len(cell_i), cell_i.shape
        row_v, col_v = self._wire_volts(cell_i, v_rows, v_cols)
        v_m, through, d_r, d_b = (x.reshape(shape) for x in solve_cells(
            self.circuit, row_v.reshape(batch, -1), col_v.reshape(batch, -1), gates, opts, v_m.reshape(batch, -1),
            tol_v[:, None]))
        return through - cell_i, v_m, d_r, d_b

    def _predict(self, v_m, d_r, d_b, drop_r, drop_c, t):
        """The inner nodes after t (batch,) times a step whose wire drops are drop_r, drop_c (the row
        wires fall by them, the columns rise), to first order."""
        t = t[:, None, None]
        return predict_inner(v_m, d_r, d_b, self.g_ratio, -t * drop_r, t * drop_c)

    def solve(self, fixed_volts: np.ndarray, gates: np.ndarray, opts,
              port_rtol: float) -> tuple[np.ndarray, np.ndarray]:
        """As SinhCurrents.solve, for gate voltages gates (batch, cells), with no bound on a step (a
        transistor's law is at most quadratic; the backtracking guards each step)."""
        batch, shape = len(fixed_volts), (len(fixed_volts), *self.r_row.shape)
        # each active vector's row, column and gate voltages
        lines = ends = [np.ascontiguousarray(fixed_volts[:, at]) for at in (self.rows_at, self.cols_at)] + [gates]
        out_i, out_v_m = np.full((2, *shape), np.nan)
        self.iterations = np.zeros((batch, 2), dtype=np.int64)  # Newton, GMRES: the last batch's, for diagnosis
        active = np.arange(batch)
        cell_i = np.zeros(shape)
        # each inner node from its column wire's voltage (a transistor conducting is the steep side), to a
        # fraction of the drive: the first step moves the wire voltages by about that
        drive = np.ptp(np.concatenate(lines[:2], axis=1), axis=1)
        rho, v_m, d_r, d_b = self._cells(cell_i, *lines, np.broadcast_to(lines[1][:, None, :], shape),
                                         START_TOL_FRACTION * drive, opts)
        norm = _norms(rho)
        norm_before, size_before = np.full(batch, np.inf), np.zeros(batch)
        theta_before = np.ones(batch)
        acc = np.empty(shape[2])
        for it in range(opts.shared_iter):
            forcing = np.clip(0.9 * (norm / norm_before) ** 2, FORCING_MIN, FORCING_MAX) if it else FORCING_MAX
            # no tighter than a last step needs to pass the test below (the step taken as about ρ)
            forcing = np.maximum(forcing, np.minimum(_finishing_forcing(cell_i, rho, port_rtol), FORCING_MAX))
            step, reached, used = np.empty_like(rho), np.empty(len(active)), np.zeros(len(active), dtype=np.int64)
            _gmres(rho, d_r, -d_b, self.row_own, self.col_own, self.r_row, self.r_col, forcing, KRYLOV_DIM, step,
                   reached, used)
            self.iterations[active] += np.stack([np.ones_like(used), used], axis=1)
            drop_r, drop_c = self._drops(step)
            size = _norms(step)
            theta = np.divide(size, size_before, out=np.where(size > 0, np.inf, 0.0), where=size_before > 0)
            # the next step's contraction: this one's if Newton slows down, this times the last if it speeds up
            rate = np.where(theta < theta_before, theta * theta_before, theta)
            error = KRYLOV_ERROR_GAIN * reached + rate / (1.0 - np.minimum(rate, 0.5))
            done = np.array([rate[k] < 0.5 and reached[k] < 1.0 and _finished(
                cell_i[k], step[k], error[k], math.inf, port_rtol, acc) for k in range(len(active))], dtype=bool)
            # a finished vector takes its step whole: its caller solves the cells at the result anyway
            out_i[active[done]] = cell_i[done] + step[done]
            out_v_m[active[done]] = self._predict(v_m[done], d_r[done], d_b[done], drop_r[done], drop_c[done],
                                                  np.ones(np.count_nonzero(done)))
            go_on = ~done & (reached < 1.0)
            if not go_on.any():
                break
            cell_i, step, v_m, d_r, d_b, drop_r, drop_c, active, norm_before, size_before, theta, *lines = _kept(
                go_on, cell_i, step, v_m, d_r, d_b, drop_r, drop_c, active, norm, size, theta, *lines)
            largest = np.max(np.abs(drop_r) + np.abs(drop_c), axis=(1, 2))
            theta_before = np.minimum(theta, 1.0)
            (cell_i, rho, v_m, d_r, d_b, norm), found = self._backtrack(
                cell_i, step, v_m, d_r, d_b, drop_r, drop_c, largest, norm_before, lines, opts)
            # the others could not lower |ρ| along their step: handed back
            cell_i, rho, v_m, d_r, d_b, active, norm, norm_before, size_before, theta_before, *lines = _kept(
                found, cell_i, rho, v_m, d_r, d_b, active, norm, norm_before, size_before, theta_before, *lines)
        solved = ~np.isnan(out_i[:, 0, 0])
        return self._node_volts(fixed_volts, *self._wire_volts(out_i, *ends[:2]), out_v_m, solved), solved

    def _backtrack(self, cell_i, step, v_m, d_r, d_b, drop_r, drop_c, largest, norm, lines, opts):
        """Armijo's backtracking on |ρ|, vector by vector: the step's length halved until |ρ| falls
        (largest: the step's largest change of a wire voltage [V], for the cells' tolerance). Returns
        the cell currents, ρ, inner nodes, derivatives and |ρ| at the points taken, and which vectors
        found one."""
        taken = [np.empty_like(x) for x in (cell_i, cell_i, v_m, d_r, d_b)]
        taken_norm = np.empty_like(norm)
        pending, t = np.arange(len(norm)), np.ones(len(norm))
        for _ in range(LINE_SEARCH_TRIES):
            t_now = t[pending]
            trial = cell_i[pending] + t_now[:, None, None] * step[pending]
            guess = self._predict(v_m[pending], d_r[pending], d_b[pending], drop_r[pending], drop_c[pending], t_now)
            found = self._cells(trial, *(x[pending] for x in lines), guess,
                                CELL_TOL_FRACTION * t_now * largest[pending], opts)
            found_norm = _norms(found[0])
            lower = found_norm <= (1.0 - 1e-4 * t_now) * norm[pending]
            if lower.all() and len(pending) == len(norm):  # the usual case: every full step taken
                return (trial, *found, found_norm), lower
            for whole, part in zip(taken, (trial, *found)):
                whole[pending[lower]] = part[lower]
            taken_norm[pending[lower]] = found_norm[lower]
            pending = pending[~lower]
            t[pending] *= 0.5
            if not len(pending):
                break
        found = np.ones(len(norm), dtype=bool)
        found[pending] = False
        return (*taken, taken_norm), found


def _kept(keep: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    """The vectors (first axis) of each array where keep (bool); the arrays themselves, no copies, when
    that is all of them (the usual case: copies here made a 64² batch 1.3x slower, measured)."""
    return list(arrays) if keep.all() else [x[keep] for x in arrays]


def _norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each vector's cells, x (batch, rows, cols)."""
    return np.sqrt(np.einsum("kij,kij->k", x, x))


def _finishing_forcing(cell_i: np.ndarray, rho: np.ndarray, port_rtol: float) -> np.ndarray:
    """Per vector: a tenth of the loosest GMRES tolerance with which a step of about ρ would leave
    every line's current within port_rtol of its value (by _finished's measure of the step's error)."""
    near, size = cell_i + rho, np.abs(rho)  # about the solution, and the step
    margin = np.minimum(np.min(np.abs(near.sum(axis=2)) / np.maximum(size.sum(axis=2), 1e-300), axis=1),
                        np.min(np.abs(near.sum(axis=1)) / np.maximum(size.sum(axis=1), 1e-300), axis=1))
    return 0.1 * port_rtol * margin / KRYLOV_ERROR_GAIN


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
def _wire_drops_each(x, r_row, r_col, drop_r, drop_c):
    """_wire_drops of every vector of x (batch, rows, cols), into drop_r, drop_c of that shape."""
    acc = np.empty(x.shape[2])
    for k in range(x.shape[0]):
        _wire_drops(x[k], r_row, r_col, drop_r[k], drop_c[k], acc)


@njit(cache=True)
def _gmres(rhs, d_r, d_c, row_own, col_own, r_row, r_col, forcing, dim, out, reached, used):
    """For each vector k (arrays (batch, rows, cols)): x with x + d_r·W_r·x + d_c·W_c·x = rhs to a
    residual of forcing[k] relative to rhs, by GMRES of at most dim iterations (no restart),
    right-preconditioned by the matrix's diagonal 1 + d_r·row_own + d_c·col_own. Into out, its
    relative residual into reached, the iterations into used."""
    batch, rows, cols = rhs.shape
    basis, pre = np.empty((dim + 1, rows, cols)), np.empty((dim, rows, cols))
    diag, drop_r, drop_c = np.empty((rows, cols)), np.empty((rows, cols)), np.empty((rows, cols))
    acc = np.empty(cols)
    h = np.zeros((dim + 1, dim))
    cos, sin, g, y = np.empty(dim), np.empty(dim), np.empty(dim + 1), np.empty(dim)
    for k in range(batch):
        beta = math.sqrt(_dot(rhs[k], rhs[k]))
        out[k] = 0.0
        reached[k] = 0.0
        if beta == 0.0:
            continue
        for i in range(rows):
            for j in range(cols):
                diag[i, j] = 1.0 + d_r[k, i, j] * row_own[i, j] + d_c[k, i, j] * col_own[i, j]
                basis[0, i, j] = rhs[k, i, j] / beta
        g[:] = 0.0
        g[0] = beta
        m = 0
        while m < dim:
            z, w = pre[m], basis[m + 1]
            for i in range(rows):
                for j in range(cols):
                    z[i, j] = basis[m, i, j] / diag[i, j]
            _wire_drops(z, r_row, r_col, drop_r, drop_c, acc)
            for i in range(rows):
                for j in range(cols):
                    w[i, j] = z[i, j] + d_r[k, i, j] * drop_r[i, j] + d_c[k, i, j] * drop_c[i, j]
            for p in range(m + 1):  # modified Gram-Schmidt
                h[p, m] = _dot(w, basis[p])
                for i in range(rows):
                    for j in range(cols):
                        w[i, j] -= h[p, m] * basis[p, i, j]
            h[m + 1, m] = math.sqrt(_dot(w, w))
            if h[m + 1, m] > 0.0:
                for i in range(rows):
                    for j in range(cols):
                        w[i, j] /= h[m + 1, m]
            for p in range(m):  # the earlier Givens rotations on the new column
                h[p, m], h[p + 1, m] = cos[p] * h[p, m] + sin[p] * h[p + 1, m], cos[p] * h[p + 1, m] - sin[p] * h[p, m]
            r = math.hypot(h[m, m], h[m + 1, m])
            cos[m], sin[m] = (h[m, m] / r, h[m + 1, m] / r) if r > 0.0 else (1.0, 0.0)
            h[m, m], h[m + 1, m] = r if r > 0.0 else 1.0, 0.0
            g[m + 1], g[m] = -sin[m] * g[m], cos[m] * g[m]
            m += 1
            if abs(g[m]) <= forcing[k] * beta:  # also where the basis broke down: x is then exact
                break
        for p in range(m - 1, -1, -1):  # back substitution: y = H⁻¹g
            total = g[p]
            for q in range(p + 1, m):
                total -= h[p, q] * y[q]
            y[p] = total / h[p, p]
        for p in range(m):
            for i in range(rows):
                for j in range(cols):
                    out[k, i, j] += y[p] * pre[p, i, j]
        reached[k] = abs(g[m]) / beta
        used[k] = m


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
