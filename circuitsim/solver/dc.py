"""Exact nodal solution of a Circuit with sparse factorizations (CHOLMOD or SuperLU).

Linear arrays: one factorization serves the whole batch (and gives the transfer matrix).
Nonlinear cells (device in series with a selector or an access transistor): each cell is
reduced to one two-terminal branch by solving its inner node (a monotone scalar equation,
bracketed Newton), so the array system keeps the size and pattern of the linear one and the
cell's current is bounded by its device conductance. A batch is then solved in chunks by
inexact Newton: each vector's own Jacobian, its steps by GMRES preconditioned with one
factorization shared by the chunk and kept for the next (see _ReducedSystem.newton); vectors
it leaves unconverged get their own Newton, and source stepping is the last resort. 1S1R arrays
with a sinh selector and 1T1R arrays, with no floating line, are solved for their cell currents
first (currents.py, no factorization); every answer, by either path, passes the same KCL check.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from circuitsim.circuit import Circuit
from circuitsim.errors import ConvergenceError, IllConditionedError
from circuitsim.solver.cells import CELL_ITER, inner_current, predict_inner, solve_cells
from circuitsim.solver.linear import BLOCK_VALUES, LinearSystem, describe, laplacian
from circuitsim.solver.ordering import elimination_order, factorize, single_threaded_blas
from circuitsim.solver.shorts import find_shorts

NEWTON_CHUNK = 24  # vectors per Newton batch
KEEP_START_UNKNOWNS = 1 << 20  # start()'s factorization is kept for the next chunk up to this many unknowns
TRUST_BELOW_KCL = 1e-6  # KCL residual of a Newton solution, relative to the currents at the node
KRYLOV_RTOL_MAX = 0.1  # forcing terms of the inexact Newton (each step's linear residual relative to
KRYLOV_RTOL_MIN = 1e-3  # KCL's), between these
KRYLOV_DIM = 10  # most GMRES iterations per Newton step (basis vectors kept per input vector)
INNER_TOL_FRACTION = 1e-2  # inner nodes solved to this fraction of the outer Newton step (1e-3: as many
# Newton and GMRES iterations, more inner ones; 1e-1: one Newton iteration more on 1S1R 128²)
INNER_TOL_START_V = 1e-6  # ... and to this before the first step
PORT_RTOL = 1e-8  # a step is final once the source currents it can still change are below this, relative
QUADRATIC_SCALE_V = 0.01  # Newton's error after a step s is taken as s²/QUADRATIC_SCALE_V (sinh: v0/2 ≥ 0.01 V)


@dataclass(frozen=True)
class NewtonOptions:
    """vtol_v: converged when the largest node update is below this [V], or when every node's KCL
    residual is below reltol_kcl × (its conductance × drive voltage), the rounding floor of
    ill-conditioned arrays; max_step_v: Newton steps are scaled down to this [V];
    shared_iter: Newton iterations of a batch (chunk), and of each vector solved by its cell
    currents; max_iter: iterations of a single-vector Newton; source_steps: ramp points of the
    source-stepping fallback; cell_iter: bracketed Newton iterations for the inner node of a cell;
    by_currents: solve 1S1R arrays with a sinh selector and 1T1R arrays for their cell currents
    where they allow it (currents.py), the general Newton-Krylov taking only what that path hands
    back."""

    vtol_v: float = 1e-9
    reltol_kcl: float = 1e-13
    max_step_v: float = 0.5
    shared_iter: int = 40
    max_iter: int = 100
    source_steps: int = 10
    cell_iter: int = CELL_ITER
    by_currents: bool = True


def incidence(a: np.ndarray, b: np.ndarray, n: int) -> sp.csr_matrix:
    """(branches, n) matrix with +1 at node a and −1 at node b: branch currents @ it gives
    the net current leaving every node."""
    k = np.arange(len(a))
    return sp.csr_matrix((np.r_[np.ones(len(a)), -np.ones(len(b))], (np.r_[k, k], np.r_[a, b])), shape=(len(a), n))


def is_linear(circuit: Circuit) -> bool:
    return circuit.inner_node is None


def free_nodes(circuit: Circuit) -> np.ndarray:
    """Unknown nodes of the (reduced) system: not fixed, not inside a cell, not cut off from every
    source (those stay at 0 V in the solver; the engine reports them as undefined)."""
    unknown = ~circuit.dead
    unknown[circuit.fixed] = False
    if not is_linear(circuit):
        unknown[circuit.inner_node.ravel()] = False
    return np.flatnonzero(unknown)


def transfer_matrix(circuit: Circuit) -> np.ndarray:
    """T with V_all = T @ V_fixed for a linear circuit: shape (n_nodes, n_fixed)."""
    if not is_linear(circuit):
        raise ValueError("the transfer matrix exists only for linear (1R) arrays")
    return LinearSystem(circuit, free_nodes(circuit)).solve(np.eye(len(circuit.fixed)))[0].T


def _full_linear_laplacian(circuit: Circuit) -> sp.csr_matrix:
    return laplacian(np.concatenate([circuit.res_a, circuit.cell_hi]),
                     np.concatenate([circuit.res_b, circuit.cell_lo]),
                     np.concatenate([1.0 / circuit.res_ohm, circuit.cell_g]), circuit.n_nodes)


def gate_voltages(circuit: Circuit, fixed_volts: np.ndarray) -> np.ndarray | None:
    """(batch, cells) gate voltage of every cell's transistor, or None without transistors."""
    if circuit.xb.transistor is None:
        return None
    is_gate = circuit.fixed_kind == 2
    per_row = np.zeros((len(fixed_volts), circuit.xb.shape[0]))
    per_row[:, circuit.fixed_line[is_gate]] = fixed_volts[:, is_gate]
    return per_row[:, circuit.tr_row]


@dataclass(frozen=True)
class Solution:
    """node_volts (batch, n_nodes) [V]; source_currents (batch, n_fixed) [A] delivered into the
    circuit by each source; cell_currents (batch, cells) [A] from the row side to the column side."""

    node_volts: np.ndarray
    source_currents: np.ndarray
    cell_currents: np.ndarray


def source_currents(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions = NewtonOptions()) -> np.ndarray:
    """Source currents (batch, n_fixed) alone, no node voltage of any vector kept: for a linear
    circuit through the sources' conductance matrix (solver/linear.py), else chunk by chunk of
    vectors. BLAS single-threaded as in operating_point()."""
    with single_threaded_blas():
        if is_linear(circuit):
            return LinearSystem(circuit, free_nodes(circuit), ports_last=True).source_currents(fixed_volts)
        return np.concatenate([part[1] for part in _nonlinear_chunks(circuit, fixed_volts, opts)])


def solve(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions = NewtonOptions()) -> np.ndarray:
    """Node voltages (batch, n_nodes) for source voltages fixed_volts (batch, n_fixed)."""
    return operating_point(circuit, fixed_volts, opts).node_volts


def operating_point(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions = NewtonOptions()) -> Solution:
    """The circuit's operating point for source voltages fixed_volts (batch, n_fixed).

    BLAS runs single-threaded here: SuperLU's multi-vector solves call small BLAS kernels,
    and threaded BLAS made them 2-5x slower on the 2-core machines we measured.
    """
    with single_threaded_blas():
        if is_linear(circuit):
            return Solution(*LinearSystem(circuit, free_nodes(circuit)).solve(fixed_volts))
        return _solve_nonlinear(circuit, fixed_volts, opts)


def _solve_nonlinear(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions) -> Solution:
    return Solution(*(np.concatenate(arrays) for arrays in zip(*_nonlinear_chunks(circuit, fixed_volts, opts))))


def _nonlinear_chunks(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions):
    """(node voltages, source currents, cell currents) of one chunk of vectors after the other."""
    cells_across = circuit.row_node.ravel(), circuit.col_node.ravel()  # a cell conducts at most cell_g
    shorts = find_shorts(np.r_[circuit.res_a, cells_across[0]], np.r_[circuit.res_b, cells_across[1]],
                         np.r_[1.0 / circuit.res_ohm, circuit.cell_g], circuit.fixed, circuit.n_nodes)
    if shorts is not None and np.any(shorts.branch < len(circuit.res_a)):  # cells: their selector limits them
        raise IllConditionedError(f"{describe(circuit)}: some wires conduct over 1e8 times more than everything "
                                  "else at their ends; the numpy engine merges such near-shorts only in 1R arrays")
    system = _ReducedSystem(circuit, free_nodes(circuit), opts)
    # chunks of vectors: a batch's working arrays stay bounded, and stay nearer the CPU cache (24 vectors
    # measured 15-25 % faster than 64 on 1S1R/1T1R 64² batches of 100)
    most = max(1, min(NEWTON_CHUNK, BLOCK_VALUES // circuit.n_nodes))
    bounds = np.linspace(0, len(fixed_volts), max(1, round(len(fixed_volts) / most)) + 1).round().astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:]):  # chunks of equal size: no small last one
        yield _newton_chunk(system, fixed_volts[start:stop])


def _newton_chunk(system: _ReducedSystem, fixed_volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    circuit, opts = system.circuit, system.opts
    v = np.zeros((len(fixed_volts), circuit.n_nodes))
    v[:, circuit.fixed] = fixed_volts
    gates = gate_voltages(circuit, fixed_volts)
    guess = None
    if len(system.free):
        v, guess = system.solve(v, gates, fixed_volts)
    v_m, cell_i, _, _ = solve_cells(circuit, v[:, circuit.row_node.ravel()], v[:, circuit.col_node.ravel()],
                                    gates, opts, guess)
    v[:, circuit.inner_node.ravel()] = v_m
    if len(system.free):
        _check_kcl(system, v, cell_i)
    return v, leaving_currents(circuit, v, gates, circuit.fixed), cell_i


def rows_times(rows: np.ndarray, matrix_t: sp.csr_matrix) -> np.ndarray:
    """rows (batch, n) @ matrix, given matrix's transpose as CSR: the product then runs on contiguous
    columns (scipy's dense @ sparse copies its operand transposed: 10x slower, measured at 64²)."""
    return (matrix_t @ np.ascontiguousarray(rows.T)).T


def _check_kcl(system: _ReducedSystem, v: np.ndarray, cell_i: np.ndarray) -> None:
    """Refuse a Newton solution whose KCL residual at some node exceeds TRUST_BELOW_KCL of the
    currents meeting there (one sparse matvec: the guard against a quietly wrong answer)."""
    wires, cells = system.lap_free_rows, system.cell_incidence_ff_t
    residual = rows_times(v, wires) + rows_times(cell_i, cells)
    scale = rows_times(np.abs(v), abs(wires)) + rows_times(np.abs(cell_i), abs(cells))
    error = np.max(np.abs(residual) / np.where(scale > 0, scale, 1.0), initial=0.0)
    if error > TRUST_BELOW_KCL:
        raise ConvergenceError(f"{describe(system.circuit)}: Newton stopped with a KCL residual of {error:.2g} "
                               "of the currents at a node: not trustworthy")


def _gmres(correct, precondition, rhs: np.ndarray, rtol, dim: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Right-preconditioned GMRES on every column of rhs (n, batch) at once, each column with its
    own operator A_k and one shared preconditioner solve per iteration: precondition(q) solves P z = q
    exactly (a direct factorization), correct(z) gives (A_k − P)·z column by column, and A_k·z = q +
    (A_k − P)·z then costs no product with P (at 256² a quarter of each iteration's products). Runs
    until every column's residual is below rtol (scalar or per column) of its rhs, or dim iterations.
    Returns x, the iterations taken, and each column's residual relative to its rhs (most end well
    below rtol). The preconditioned vectors are kept (flexible GMRES), which saves a last solve.
    Columns, not rows: sparse products and gathers of nodes then work on contiguous memory."""
    batch = rhs.shape[1]
    beta = _column_norms(rhs)
    basis, preconditioned = [rhs / np.where(beta > 0, beta, 1.0)], []
    scratch = np.empty_like(rhs)  # one buffer for the products: at 256² each is tens of MB
    h = np.zeros((batch, dim + 1, dim))
    cos, sin = np.ones((batch, dim)), np.zeros((batch, dim))
    g = np.zeros((batch, dim + 1))
    g[:, 0] = beta
    for j in range(dim):
        preconditioned.append(precondition(basis[j]))
        w = correct(preconditioned[j])
        w += basis[j]
        for i, q in enumerate(basis):  # modified Gram-Schmidt
            h[:, i, j] = np.einsum("ij,ij->j", w, q)
            w -= np.multiply(q, h[:, i, j], out=scratch)
        h[:, j + 1, j] = _column_norms(w)
        w /= np.where(h[:, j + 1, j] > 0, h[:, j + 1, j], 1.0)
        basis.append(w)
        for i in range(j):  # the earlier Givens rotations on the new column
            h[:, i, j], h[:, i + 1, j] = (cos[:, i] * h[:, i, j] + sin[:, i] * h[:, i + 1, j],
                                          cos[:, i] * h[:, i + 1, j] - sin[:, i] * h[:, i, j])
        r = np.hypot(h[:, j, j], h[:, j + 1, j])
        nonzero = r > 0
        cos[nonzero, j], sin[nonzero, j] = h[nonzero, j, j] / r[nonzero], h[nonzero, j + 1, j] / r[nonzero]
        h[:, j, j], h[:, j + 1, j] = np.where(nonzero, r, 1.0), 0.0
        g[:, j + 1], g[:, j] = -sin[:, j] * g[:, j], cos[:, j] * g[:, j]
        residual = np.abs(g[:, j + 1]) / np.where(beta > 0, beta, 1.0)
        if np.all(residual <= rtol):
            break
    k = j + 1
    y = np.linalg.solve(h[:, :k, :k], g[:, :k, None])[..., 0]
    x = preconditioned[0] * y[:, 0]
    for i in range(1, k):
        x += np.multiply(preconditioned[i], y[:, i], out=scratch)
    return x, k, residual


def _column_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of every column of x (n, batch): einsum's dot products, 2x faster than norm()'s."""
    return np.sqrt(np.einsum("ij,ij->j", x, x))


class _ReducedSystem:
    """Wire Laplacian plus one nonlinear two-terminal branch per cell (row node – column node)."""

    def __init__(self, circuit: Circuit, free: np.ndarray, opts: NewtonOptions):
        free = free[elimination_order(circuit, free)]  # unknowns numbered in elimination order
        self.circuit, self.free, self.opts = circuit, free, opts
        self.order = np.arange(len(free))
        n = circuit.n_nodes
        self.lap = laplacian(circuit.res_a, circuit.res_b, 1.0 / circuit.res_ohm, n)
        self.lap_free_rows = sp.csr_matrix(self.lap[free])  # KCL at the unknowns
        self.lap_ff = sp.csr_matrix(self.lap_free_rows[:, free])
        self.a, self.b = circuit.row_node.ravel(), circuit.col_node.ravel()
        index = np.full(n, -1)
        index[free] = np.arange(len(free))
        self.fa, self.fb = index[self.a], index[self.b]  # -1: not an unknown
        self.ends_unknown = bool(np.all(self.fa >= 0) and np.all(self.fb >= 0))
        self.cell_incidence_ff = sp.csr_matrix(incidence(self.a, self.b, n)[:, free])  # unknowns → cells
        self.cell_incidence_ff_t = sp.csr_matrix(self.cell_incidence_ff.T)
        self.node_conductance = self.lap_ff.diagonal() + abs(self.cell_incidence_ff_t) @ circuit.cell_g
        to_sources = self.lap_free_rows[:, circuit.fixed]  # unknowns next to a source: the ports
        self.port_g = np.asarray(abs(to_sources).sum(axis=1)).ravel()
        self.ports = np.flatnonzero(self.port_g > 0)
        self.port_coupling = sp.csr_matrix(to_sources[self.ports])
        self.g_ratio = np.divide(1.0, circuit.cell_g, out=np.zeros(len(self.a)), where=circuit.cell_g > 0)
        self._start = None  # (cell conductances, factorization) of the last start()
        self._preconditioner = None  # newton()'s (cell conductances, factorization), kept from chunk to chunk
        from circuitsim.solver import currents  # numba: imported on first use, as the cells' laws are

        self.by_currents = currents.system_for(circuit) if opts.by_currents else None

    def _jacobian(self, da: np.ndarray, db: np.ndarray) -> sp.csc_matrix:
        """Wire part plus the cell stamps (da, db: derivatives per cell) on the unknowns."""
        fa, fb = self.fa, self.fb
        parts = [(fa, fa, da), (fa, fb, db), (fb, fa, -da), (fb, fb, -db)]
        rows = np.concatenate([r[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        cols = np.concatenate([c[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        vals = np.concatenate([x[(r >= 0) & (c >= 0)] for r, c, x in parts])
        m = len(self.free)
        return sp.csc_matrix(self.lap_ff + sp.csc_matrix((vals, (rows, cols)), shape=(m, m)))

    @staticmethod
    def _stand_in(da: np.ndarray, db: np.ndarray) -> np.ndarray:
        """Each cell as one conductance for a whole batch: the batch's mean of (di/dv_r − di/dv_b)/2.
        A selector's stamp is that exactly (di/dv_b = −di/dv_r); a transistor's is not symmetric, but
        the symmetric stand-in (Cholesky) cost GMRES no more iterations than the exact mean Jacobian
        (SuperLU, 4x slower solves) on 1T1R 64²."""
        return 0.5 * (da - db).mean(axis=0)

    def _factorize(self, conductance: np.ndarray):
        """The wires plus each cell as the given conductance, factorized: a preconditioner (or, for
        start(), the exact Jacobian) for every vector of a batch."""
        return factorize(self._jacobian(conductance, -conductance), self.order, symmetric=True,
                         label=describe(self.circuit), compiled_solves=True)

    def _zero_padded(self, x: np.ndarray, axis: int) -> np.ndarray:
        """x with a zero appended along axis, the value that index −1 (a node held by a source) picks in
        fa, fb; x itself, no copy, where every cell sits between two unknowns (the usual case)."""
        if self.ends_unknown:
            return x
        shape = list(x.shape)
        shape[axis] = 1
        return np.concatenate([x, np.zeros(shape)], axis=axis)

    def _at_ends(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (batch, cells) of x (batch, unknowns) at each cell's row and column node (0 where
        that node is held by a source)."""
        padded = self._zero_padded(x, axis=1)
        return padded[:, self.fa], padded[:, self.fb]

    def _apply_stamps(self, x: np.ndarray, da: np.ndarray, db: np.ndarray) -> np.ndarray:
        """The cell stamps times x (unknowns, batch), each vector's column with its own derivatives da,
        db (cells, batch): a Jacobian is the wires' Laplacian plus these. In place where it can: at 256²
        each temporary is tens of MB."""
        if self.circuit.xb.selector is not None:  # db = −da: the stamp acts on the voltage across the cell
            through = self.cell_incidence_ff @ x
            through *= da
        else:
            padded = self._zero_padded(x, axis=0)
            through = padded[self.fa]
            through *= da
            through += db * padded[self.fb]
        return self.cell_incidence_ff_t @ through

    def _predict(self, v_m: np.ndarray, da: np.ndarray, db: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Inner-node voltages after a step of the unknowns, to first order (the cell's own
        linearization): a starting guess on which the exact inner solve needs one or two iterations."""
        return predict_inner(v_m, da, db, self.g_ratio, *self._at_ends(step))

    def residual(self, v: np.ndarray, gates, v_m: np.ndarray | None, tol_v=0.0, shared: bool = False):
        """KCL residual on the unknowns (batch, free), the cell derivatives, and the inner-node
        voltages (v_m: the starting guess for them, e.g. predicted from the previous iteration;
        tol_v: their tolerance, see solve_cells). shared: every vector's cells see the same voltages
        and gates, so only the first vector's are solved (the cell arrays then have one row)."""
        cells = slice(0, 1) if shared else slice(None)
        v_m, i, da, db = solve_cells(self.circuit, v[cells, self.a], v[cells, self.b],
                                     None if gates is None else gates[cells], self.opts, v_m, tol_v)
        # lap is symmetric. f (batch, free) is the transpose of a C array: GMRES takes its columns, no copy
        f = rows_times(v, self.lap_free_rows) + rows_times(i, self.cell_incidence_ff_t)
        return f, da, db, v_m

    def start(self, v: np.ndarray, gates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """v with its unknowns moved to the solution of the array linearized at v (one linear solve,
        shared by the batch where the cells' linearizations agree), the inner nodes predicted there
        and the tolerance they need (batch, 1). From 0 V that is about the operating point without
        IR drop, a start from which Newton needs few iterations.

        From 0 V every vector's cells usually sit at the same voltages (0 V across): they are then
        solved once, and the factorization is reused from the previous chunk when its cells'
        linearization was the same (a tenth of a 64² chunk's time, measured)."""
        shared = len(v) > 1 and all(np.array_equal(x, np.broadcast_to(x[:1], x.shape))
                                    for x in (v[:, self.a], v[:, self.b], gates) if x is not None)
        f, da, db, v_m = self.residual(v, gates, None, shared=shared)
        conductance = self._stand_in(da, db)
        if self._start is not None and np.array_equal(self._start[0], conductance):
            factor = self._start[1]
        else:
            factor = self._factorize(conductance)
            # kept for the next chunk beside newton()'s preconditioner where two factorizations fit
            # easily: at 1024² 1S1R keeping it raised the peak memory from 3.3 to 4.1 GB (measured)
            self._start = (conductance, factor) if len(self.free) <= KEEP_START_UNKNOWNS else None
        step = -factor.solve(np.ascontiguousarray(f.T)).T
        v = v.copy()
        v[:, self.free] += step
        largest = np.max(np.abs(step), axis=1, initial=0.0)[:, None]
        return v, self._predict(v_m, da, db, step), INNER_TOL_FRACTION * largest

    def newton(self, v: np.ndarray, gates, iterations: int, v_m: np.ndarray | None = None,
               tol_v=INNER_TOL_START_V) -> tuple[np.ndarray, np.ndarray]:
        """Inexact Newton on every row of v at once: each vector's own Jacobian, its step solved by
        GMRES preconditioned with one factorization shared by the batch (refactorized only when
        GMRES slows down), and a line search per vector (see _line_search). Vectors that do not
        converge come back as NaN rows. Returns v and its inner-node voltages to first order, a guess
        for solve_cells (v_m: a guess for them at the given v, tol_v: their tolerance there). The
        preconditioner is kept for the next call (the next chunk of the batch: alike enough).

        A vector is done when its KCL residual is at rounding level, or when its step's error
        (GMRES's tolerance and the quadratic term of Newton, within QUADRATIC_SCALE_V) would be below
        vtol_v once applied."""
        opts = self.opts
        v = v.copy()
        drive = np.max(np.abs(v[:, self.circuit.fixed]), axis=1, initial=0.0)
        # each node's rounding floor: its conductance (wires, cells at most their device's g) × the drive
        itol = opts.reltol_kcl * np.maximum(drive, 1.0)[:, None] * self.node_conductance
        active = np.ones(len(v), dtype=bool)
        f, da, db, v_m = self.residual(v, gates, v_m, tol_v)
        before, last_largest, last_port_step = None, np.zeros(len(v)), np.zeros((len(v), len(self.ports)))
        for _ in range(iterations):
            idx = slice(None) if active.all() else np.flatnonzero(active)  # a slice gives views, not copies
            if self._preconditioner is None:
                conductance = self._stand_in(da[idx], db[idx])
                try:
                    self._preconditioner = conductance, self._factorize(conductance)
                except ConvergenceError:
                    break
            conductance, factor = self._preconditioner
            sub_da, sub_db = da[idx], db[idx]
            # each vector's Jacobian minus the preconditioner's matrix, whose cells are the stand-in conductance
            da_t, db_t = np.ascontiguousarray(sub_da.T), np.ascontiguousarray(sub_db.T)
            da_t -= conductance[:, None]
            db_t += conductance[:, None]
            norm, floor = np.linalg.norm(f, axis=1), self._port_floor(v[idx])
            forcing = np.full(len(floor), KRYLOV_RTOL_MAX)
            if before is not None:  # Eisenstat-Walker: as tight as Newton's own progress warrants ...
                ratio = (norm / np.where(before > 0, before, 1.0))[idx]
                forcing = np.clip(0.9 * ratio ** 2, KRYLOV_RTOL_MIN, KRYLOV_RTOL_MAX)
                # ... but no tighter than a last step needs: this step is expected to scale with the residual,
                # and to be at most the last one's quadratic term
                quadratic = last_largest[idx] ** 2 / QUADRATIC_SCALE_V
                finishing = self._finishing_forcing(np.maximum(ratio * last_largest[idx], quadratic),
                                                    np.maximum(ratio[:, None] * last_port_step[idx],
                                                               quadratic[:, None]), floor)
                forcing = np.maximum(forcing, np.minimum(finishing, KRYLOV_RTOL_MAX))
            before = norm
            step, used, residual = _gmres(lambda x: self._apply_stamps(x, da_t, db_t), factor.solve,
                                        np.ascontiguousarray(-f[idx].T), forcing, KRYLOV_DIM)
            # (batch, free) as the transpose of GMRES's columns: the step is read by vector and by node alike
            step = step.T
            solved = residual <= forcing
            if used > KRYLOV_DIM // 2 or not solved.all():
                # the batch has moved away from the preconditioner's linearization; its factorization is freed
                # before the next one is made (two at once: 3.3 GB instead of 2.6 GB peak in a 1024² 1S1R solve)
                self._preconditioner = factor = None
            largest = np.max(np.abs(step), axis=1, initial=0.0)
            step *= np.minimum(1.0, opts.max_step_v / np.maximum(largest, 1e-300))[:, None]
            last_largest[idx], last_port_step[idx] = largest, np.abs(step[:, self.ports])
            # the step's relative error: GMRES's residual as reached (often well below the forcing term)
            # and Newton's quadratic term
            relative = np.where(solved, residual + largest / QUADRATIC_SCALE_V, 1.0)
            error_after = largest * relative
            # each port's own step: a high-impedance node elsewhere (a floating line) may wiggle at rounding
            port_error = self.port_g[self.ports] * last_port_step[idx] * relative[:, None]
            done = np.all(port_error <= floor, axis=1) & (
                (error_after < opts.vtol_v) | np.all(np.abs(f[idx]) < itol[idx], axis=1))
            finished = np.arange(len(v))[idx][done]
            # a finished vector takes its step whole, without the line search's residual there: its
            # caller solves its cells at the final v anyway (one cell solve fewer per vector)
            v[np.ix_(finished, self.free)] += step[done]
            v_m[finished] = self._predict(v_m[finished], sub_da[done], sub_db[done], step[done])
            active[finished] = False
            if not active.any():
                return v, v_m
            if len(finished):  # index arrays from here on (copies); the slice while every vector goes on
                idx, step, sub_da, sub_db, largest = np.flatnonzero(active), *(x[~done] for x in (
                    step, sub_da, sub_db, largest))
            v[idx], f[idx], da[idx], db[idx], v_m[idx] = self._line_search(
                v[idx], step, f[idx], None if gates is None else gates[idx], v_m[idx], sub_da, sub_db,
                INNER_TOL_FRACTION * largest[:, None])
        v[active] = np.nan
        return v, v_m

    def _port_floor(self, v: np.ndarray) -> np.ndarray:
        """The current error (batch, ports) [A] each port may keep: PORT_RTOL of the current it delivers
        into its sources, or its rounding floor. The reported row and column currents are those
        differences: a sense node held at 1 V with 1 nA flowing needs its neighbour right to 1e-15 V,
        far below vtol_v."""
        if not len(self.ports):
            return np.zeros((len(v), 0))
        held = -rows_times(v[:, self.circuit.fixed], self.port_coupling)  # Σ g·v over the sources
        own = self.port_g[self.ports] * v[:, self.free[self.ports]]
        return PORT_RTOL * np.abs(own - held) + 8 * np.finfo(float).eps * (np.abs(own) + np.abs(held))

    def _finishing_forcing(self, largest: np.ndarray, port_step: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Per vector: a tenth of the loosest GMRES tolerance with which a step of this size (largest
        node update [V], each port's update) would pass newton()'s test of a final step (a tenth: the
        size is only predicted); 0 where its quadratic term alone fails it."""
        largest = np.maximum(largest, 1e-300)
        by_ports = np.min(floor / np.maximum(self.port_g[self.ports] * port_step, 1e-300), axis=1, initial=np.inf)
        return np.maximum(0.1 * (np.minimum(self.opts.vtol_v / largest, by_ports) - largest / QUADRATIC_SCALE_V), 0.0)

    def _line_search(self, v, step, f, gates, v_m, da, db, tol_v, tries: int = 12):
        """v + t·step per vector, t in (0, 1], with everything residual() returns there (da, db:
        the cell derivatives at v, to predict the inner nodes; tol_v: the inner nodes' tolerance).

        KCL of wires and monotone cells is the gradient of a convex energy (the co-content), so
        along a descent direction its slope f(v + t·step)·step rises with t. A full step that
        overshoots the minimum along the line (slope clearly positive) is cut back by
        regula falsi on that slope: the energy then falls at every iteration, which is what
        keeps Newton from cycling around the sharp knee of a steep selector.
        """
        free = self.free
        slope0 = np.einsum("ij,ij->i", f, step)
        trial = v.copy()
        trial[:, free] += step
        out = list(self.residual(trial, gates, self._predict(v_m, da, db, step), tol_v))
        slope1 = np.einsum("ij,ij->i", out[0], step)
        redo = np.flatnonzero((slope0 < 0) & (slope1 > -slope0))
        if not len(redo):
            out.insert(0, trial)
            return tuple(out)
        lo, s_lo = np.zeros(len(redo)), slope0[redo]
        hi, s_hi = np.ones(len(redo)), slope1[redo]
        best = [trial[redo], *(x[redo] for x in out)]  # kept if no point below the minimum is found
        sub_gates = None if gates is None else gates[redo]
        for _ in range(tries):
            t = np.clip(lo - s_lo * (hi - lo) / (s_hi - s_lo), lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))
            point = v[redo].copy()
            point[:, free] += t[:, None] * step[redo]
            found = self.residual(point, sub_gates, self._predict(v_m[redo], da[redo], db[redo],
                                                                  t[:, None] * step[redo]), tol_v[redo])
            s_t = np.einsum("ij,ij->i", found[0], step[redo])
            below = s_t <= 0
            for keep, new in zip(best, (point, *found)):
                keep[below] = new[below]
            lo, s_lo = np.where(below, t, lo), np.where(below, s_t, s_lo)
            hi, s_hi = np.where(below, hi, t), np.where(below, s_hi, s_t)
            if np.all(below & (s_t > -0.5 * np.abs(slope0[redo]))):
                break
        out.insert(0, trial)
        for whole, part in zip(out, best):
            whole[redo] = part
        return tuple(out)

    def solve(self, v: np.ndarray, gates, fixed_volts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """v (batch, nodes) with its unknowns solved, and a guess for the inner nodes (None: none). By
        cell currents where the design allows (currents.py: no factorization; measured on batches of
        100, 2x faster on 1S1R 64², 5x at 256², 1.4x on 1T1R 64², 1.25x at 256²), else, and for any
        vector that path hands back, by the batch's Newton-Krylov; a vector that fails there too gets
        its own Newton, then source stepping."""
        todo = np.arange(len(v))
        guess = np.empty((len(v), len(self.a)))
        if self.by_currents is not None:
            by_currents, solved = self.by_currents.solve(fixed_volts, gates, self.opts, PORT_RTOL)
            v = np.where(solved[:, None], by_currents, v)
            guess[solved] = v[np.ix_(solved, self.circuit.inner_node.ravel())]
            todo = np.flatnonzero(~solved)
        if len(todo):
            sub_gates = None if gates is None else gates[todo]
            sub, sub_guess, tol_v = self.start(v[todo], sub_gates)
            v[todo], guess[todo] = self.newton(sub, sub_gates, self.opts.shared_iter, sub_guess, tol_v)
        failed = np.flatnonzero(np.isnan(v[:, 0]))
        for k in failed:
            v[k] = self.single(fixed_volts[k], None if gates is None else gates[k])
        return v, None if len(failed) else guess

    def single(self, v_fixed: np.ndarray, gate_v) -> np.ndarray:
        """One vector: plain Newton, then source stepping from 0 V if that fails."""
        gates = None if gate_v is None else gate_v[None, :]
        start = np.zeros((1, self.circuit.n_nodes))
        start[0, self.circuit.fixed] = v_fixed
        v, guess, tol_v = self.start(start, gates)
        v = self.newton(v, gates, self.opts.max_iter, guess, tol_v)[0]
        if not np.isnan(v[0, 0]):
            return v[0]
        v = np.zeros((1, self.circuit.n_nodes))
        for alpha in np.linspace(0, 1, self.opts.source_steps + 1)[1:]:
            v[0, self.circuit.fixed] = alpha * v_fixed
            v = self.newton(v, None if gates is None else alpha * gates, self.opts.max_iter)[0]
            if np.isnan(v[0, 0]):
                raise ConvergenceError(f"{describe(self.circuit)}: Newton did not converge even with source "
                                       f"stepping (stuck at {alpha:.0%} of the drive)")
        return v[0]


def leaving_currents(circuit: Circuit, v: np.ndarray, gates, nodes: np.ndarray | None = None) -> np.ndarray:
    """Net current (batch, len(nodes)) leaving each of the given nodes (default: all) through all
    elements, from node voltages. Only the elements at those nodes are evaluated: the sources' currents
    need no transistor or selector law away from them (4 % of a 1T1R 256² batch, measured)."""
    nodes = np.arange(circuit.n_nodes) if nodes is None else nodes
    out = rows_times(v, _full_linear_laplacian(circuit)[nodes])  # wires and linear cell devices; symmetric
    if not is_linear(circuit):
        m, b = circuit.inner_node.ravel(), circuit.col_node.ravel()
        at = np.full(circuit.n_nodes, len(nodes))  # position among nodes; len(nodes): elsewhere
        at[nodes] = np.arange(len(nodes))
        cells = np.flatnonzero((at[m] < len(nodes)) | (at[b] < len(nodes)))
        through = inner_current(circuit, v[:, m[cells]], v[:, b[cells]], None if gates is None else gates[:, cells])[0]
        out += rows_times(through, incidence(at[m[cells]], at[b[cells]], len(nodes) + 1)[:, :-1].T.tocsr())
    return out
