"""Exact nodal solution of a Circuit with sparse factorizations (CHOLMOD or SuperLU).

Linear arrays: one factorization serves the whole batch (and gives the transfer matrix).
Nonlinear cells (device in series with a selector or an access transistor): each cell is
reduced to one two-terminal branch by solving its inner node (a monotone scalar equation,
bracketed Newton), so the array system keeps the size and pattern of the linear one and the
cell's current is bounded by its device conductance. A batch is then solved in chunks by
inexact Newton: each vector's own Jacobian, its steps by GMRES preconditioned with one
factorization shared by the chunk (see _ReducedSystem.newton); vectors it leaves unconverged
get their own Newton, and source stepping is the last resort.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from circuitsim.circuit import Circuit
from circuitsim.errors import ConvergenceError, IllConditionedError
from circuitsim.solver.cells import CELL_ITER, inner_current, solve_cells
from circuitsim.solver.linear import BLOCK_VALUES, LinearSystem, describe, laplacian
from circuitsim.solver.ordering import elimination_order, factorize, have_cholmod
from circuitsim.solver.shorts import find_shorts

NEWTON_CHUNK = 24  # vectors per Newton batch
TRUST_BELOW_KCL = 1e-6  # KCL residual of a Newton solution, relative to the currents at the node
KRYLOV_RTOL_MAX = 0.1  # forcing terms of the inexact Newton (each step's linear residual relative to
KRYLOV_RTOL_MIN = 1e-3  # KCL's), between these
KRYLOV_DIM = 10  # most GMRES iterations per Newton step (basis vectors kept per input vector)
INNER_TOL_FRACTION = 1e-3  # inner nodes solved to this fraction of the outer Newton step
INNER_TOL_START_V = 1e-6  # ... and to this before the first step
PORT_RTOL = 1e-8  # a step is final once the source currents it can still change are below this, relative
QUADRATIC_SCALE_V = 0.01  # Newton's error after a step s is taken as s²/QUADRATIC_SCALE_V (sinh: v0/2 ≥ 0.01 V)


@dataclass(frozen=True)
class NewtonOptions:
    """vtol_v: converged when the largest node update is below this [V], or when every node's KCL
    residual is below reltol_kcl × (its conductance × drive voltage), the rounding floor of
    ill-conditioned arrays; max_step_v: Newton steps are scaled down to this [V];
    shared_iter: Newton iterations of a batch (chunk); max_iter: iterations of a
    single-vector Newton; source_steps: ramp points of the source-stepping fallback;
    cell_iter: bracketed Newton iterations for the inner node of a cell."""

    vtol_v: float = 1e-9
    reltol_kcl: float = 1e-13
    max_step_v: float = 0.5
    shared_iter: int = 40
    max_iter: int = 100
    source_steps: int = 10
    cell_iter: int = CELL_ITER


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


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries in this process, CHOLMOD's own (the system's) among them: loaded first."""
    have_cholmod()
    return ThreadpoolController()


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
    with _blas().limit(limits=1, user_api="blas"):
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
    with _blas().limit(limits=1, user_api="blas"):
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
    chunk = max(1, min(NEWTON_CHUNK, BLOCK_VALUES // circuit.n_nodes))
    for start in range(0, len(fixed_volts), chunk):
        yield _newton_chunk(system, fixed_volts[start:start + chunk])


def _newton_chunk(system: _ReducedSystem, fixed_volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    circuit, opts = system.circuit, system.opts
    v = np.zeros((len(fixed_volts), circuit.n_nodes))
    v[:, circuit.fixed] = fixed_volts
    gates = gate_voltages(circuit, fixed_volts)
    if len(system.free):
        v, guess, tol_v = system.start(v, gates)
        v, guess = system.newton(v, gates, system.opts.shared_iter, guess, tol_v)
        failed = np.flatnonzero(np.isnan(v[:, 0]))
        for k in failed:
            v[k] = system.single(fixed_volts[k], None if gates is None else gates[k])
        guess = None if len(failed) else guess
    else:
        guess = None
    v_m, cell_i, _, _ = solve_cells(circuit, v[:, circuit.row_node.ravel()], v[:, circuit.col_node.ravel()],
                                    gates, opts, guess)
    v[:, circuit.inner_node.ravel()] = v_m
    if len(system.free):
        _check_kcl(system, v, cell_i)
    return v, leaving_currents(circuit, v, gates)[:, circuit.fixed], cell_i


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


def _gmres(apply, precondition, rhs: np.ndarray, rtol, dim: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Right-preconditioned GMRES on every column of rhs (n, batch) at once, each column with its
    own operator (apply maps columns to columns) and one shared preconditioner solve per iteration:
    x, the iterations taken (at most dim), and per column whether its residual fell below rtol
    (scalar or per column) of its rhs. The preconditioned vectors are kept (flexible GMRES), which saves a last solve.
    Columns, not rows: sparse products and gathers of nodes then work on contiguous memory."""
    batch = rhs.shape[1]
    beta = np.linalg.norm(rhs, axis=0)
    basis, preconditioned = [rhs / np.where(beta > 0, beta, 1.0)], []
    h = np.zeros((batch, dim + 1, dim))
    cos, sin = np.ones((batch, dim)), np.zeros((batch, dim))
    g = np.zeros((batch, dim + 1))
    g[:, 0] = beta
    for j in range(dim):
        preconditioned.append(precondition(basis[j]))
        w = apply(preconditioned[j])
        for i, q in enumerate(basis):  # modified Gram-Schmidt
            h[:, i, j] = np.einsum("ij,ij->j", w, q)
            w -= h[:, i, j] * q
        h[:, j + 1, j] = np.linalg.norm(w, axis=0)
        basis.append(w / np.where(h[:, j + 1, j] > 0, h[:, j + 1, j], 1.0))
        for i in range(j):  # the earlier Givens rotations on the new column
            h[:, i, j], h[:, i + 1, j] = (cos[:, i] * h[:, i, j] + sin[:, i] * h[:, i + 1, j],
                                          cos[:, i] * h[:, i + 1, j] - sin[:, i] * h[:, i, j])
        r = np.hypot(h[:, j, j], h[:, j + 1, j])
        nonzero = r > 0
        cos[nonzero, j], sin[nonzero, j] = h[nonzero, j, j] / r[nonzero], h[nonzero, j + 1, j] / r[nonzero]
        h[:, j, j], h[:, j + 1, j] = np.where(nonzero, r, 1.0), 0.0
        g[:, j + 1], g[:, j] = -sin[:, j] * g[:, j], cos[:, j] * g[:, j]
        solved = np.abs(g[:, j + 1]) <= rtol * beta
        if solved.all():
            break
    k = j + 1
    y = np.linalg.solve(h[:, :k, :k], g[:, :k, None])[..., 0]
    x = preconditioned[0] * y[:, 0]
    for i in range(1, k):
        x += preconditioned[i] * y[:, i]
    return x, k, solved


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
        self.cell_incidence_ff = sp.csr_matrix(incidence(self.a, self.b, n)[:, free])  # unknowns → cells
        self.cell_incidence_ff_t = sp.csr_matrix(self.cell_incidence_ff.T)
        self.node_conductance = self.lap_ff.diagonal() + abs(self.cell_incidence_ff_t) @ circuit.cell_g
        to_sources = self.lap_free_rows[:, circuit.fixed]  # unknowns next to a source: the ports
        self.port_g = np.asarray(abs(to_sources).sum(axis=1)).ravel()
        self.ports = np.flatnonzero(self.port_g > 0)
        self.port_coupling = sp.csr_matrix(to_sources[self.ports])
        self.g_ratio = np.divide(1.0, circuit.cell_g, out=np.zeros(len(self.a)), where=circuit.cell_g > 0)

    def _jacobian(self, da: np.ndarray, db: np.ndarray) -> sp.csc_matrix:
        """Wire part plus the cell stamps (da, db: derivatives per cell) on the unknowns."""
        fa, fb = self.fa, self.fb
        parts = [(fa, fa, da), (fa, fb, db), (fb, fa, -da), (fb, fb, -db)]
        rows = np.concatenate([r[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        cols = np.concatenate([c[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        vals = np.concatenate([x[(r >= 0) & (c >= 0)] for r, c, x in parts])
        m = len(self.free)
        return sp.csc_matrix(self.lap_ff + sp.csc_matrix((vals, (rows, cols)), shape=(m, m)))

    def _factorize(self, da: np.ndarray, db: np.ndarray):
        """A preconditioner for every vector of a batch: the wires plus each cell as a conductance,
        the batch's mean of (di/dv_r − di/dv_b)/2. A selector's stamp is that exactly (di/dv_b =
        −di/dv_r); a transistor's is not symmetric, but the symmetric stand-in (Cholesky) cost
        GMRES no more iterations than the exact mean Jacobian (SuperLU, 4x slower solves) on 1T1R 64²."""
        conductance = 0.5 * (da - db).mean(axis=0)
        return factorize(self._jacobian(conductance, -conductance), self.order, symmetric=True,
                         label=describe(self.circuit))

    def _at_ends(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (batch, cells) of x (batch, unknowns) at each cell's row and column node (0 where
        that node is held by a source)."""
        padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)  # index -1: the zero column
        return padded[:, self.fa], padded[:, self.fb]

    def _apply_jacobian(self, x: np.ndarray, da: np.ndarray, db: np.ndarray) -> np.ndarray:
        """Each vector's own Jacobian times its column of x (unknowns, batch); da, db: (cells, batch)."""
        if self.circuit.xb.selector is not None:  # db = −da: the stamp acts on the voltage across the cell
            return self.lap_ff @ x + self.cell_incidence_ff_t @ (da * (self.cell_incidence_ff @ x))
        padded = np.concatenate([x, np.zeros((1, x.shape[1]))])  # index -1: the zero row
        return self.lap_ff @ x + self.cell_incidence_ff_t @ (da * padded[self.fa] + db * padded[self.fb])

    def _predict(self, v_m: np.ndarray, da: np.ndarray, db: np.ndarray, step: np.ndarray) -> np.ndarray:
        """Inner-node voltages after a step of the unknowns, to first order (the cell's own
        linearization): a starting guess on which the exact inner solve needs one or two iterations."""
        dva, dvb = self._at_ends(step)
        return v_m + (1.0 - da * self.g_ratio) * dva - db * self.g_ratio * dvb

    def residual(self, v: np.ndarray, gates, v_m: np.ndarray | None, tol_v=0.0):
        """KCL residual on the unknowns (batch, free), the cell derivatives, and the inner-node
        voltages (v_m: the starting guess for them, e.g. predicted from the previous iteration;
        tol_v: their tolerance, see solve_cells)."""
        v_m, i, da, db = solve_cells(self.circuit, v[:, self.a], v[:, self.b], gates, self.opts, v_m, tol_v)
        f = rows_times(v, self.lap_free_rows) + rows_times(i, self.cell_incidence_ff_t)  # lap is symmetric
        return np.ascontiguousarray(f), da, db, v_m

    def start(self, v: np.ndarray, gates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """v with its unknowns moved to the solution of the array linearized at v (one linear solve,
        shared by the batch where the cells' linearizations agree), the inner nodes predicted there
        and the tolerance they need (batch, 1). From 0 V that is about the operating point without
        IR drop, a start from which Newton needs few iterations."""
        f, da, db, v_m = self.residual(v, gates, None)
        step = -self._factorize(da, db).solve(np.ascontiguousarray(f.T)).T
        v = v.copy()
        v[:, self.free] += step
        largest = np.max(np.abs(step), axis=1, initial=0.0)[:, None]
        return v, self._predict(v_m, da, db, step), INNER_TOL_FRACTION * largest

    def newton(self, v: np.ndarray, gates, iterations: int, v_m: np.ndarray | None = None,
               tol_v=INNER_TOL_START_V) -> tuple[np.ndarray, np.ndarray]:
        """Inexact Newton on every row of v at once: each vector's own Jacobian, its step solved by
        GMRES preconditioned with one factorization shared by the batch (refactorized only when
        GMRES slows down), and a line search per vector (see _line_search). Vectors that do not
        converge come back as NaN rows, with the inner-node voltages (v_m: a guess for them, tol_v:
        their tolerance at v).

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
        factor, forcing, before = None, np.full(len(v), KRYLOV_RTOL_MAX), None
        for _ in range(iterations):
            idx = slice(None) if active.all() else np.flatnonzero(active)  # a slice gives views, not copies
            if factor is None:
                try:
                    factor = self._factorize(da[idx], db[idx])
                except ConvergenceError:
                    break
            sub_da, sub_db = da[idx], db[idx]
            da_t, db_t = np.ascontiguousarray(sub_da.T), np.ascontiguousarray(sub_db.T)
            norm = np.linalg.norm(f, axis=1)
            if before is not None:  # Eisenstat-Walker: as tight as Newton's own progress warrants
                forcing = np.clip(0.9 * (norm / np.where(before > 0, before, 1.0)) ** 2, KRYLOV_RTOL_MIN,
                                  KRYLOV_RTOL_MAX)
            before = norm
            step, used, solved = _gmres(lambda x: self._apply_jacobian(x, da_t, db_t), factor.solve,
                                        np.ascontiguousarray(-f[idx].T), forcing[idx], KRYLOV_DIM)
            step = np.ascontiguousarray(step.T)
            if used > KRYLOV_DIM // 2 or not solved.all():
                factor = None  # the batch has moved away from the preconditioner's linearization
            largest = np.max(np.abs(step), axis=1, initial=0.0)
            step *= np.minimum(1.0, opts.max_step_v / np.maximum(largest, 1e-300))[:, None]
            error_after = largest * np.where(solved, forcing[idx] + largest / QUADRATIC_SCALE_V, 1.0)
            # each port's own step: a high-impedance node elsewhere (a floating line) may wiggle at rounding
            port_error = (self.port_g[self.ports] * np.abs(step[:, self.ports])
                          * np.where(solved, forcing[idx] + largest / QUADRATIC_SCALE_V, 1.0)[:, None])
            done = self._ports_accurate(v[idx], port_error) & (
                (error_after < opts.vtol_v) | np.all(np.abs(f[idx]) < itol[idx], axis=1))
            v[idx], f[idx], da[idx], db[idx], v_m[idx] = self._line_search(
                v[idx], step, f[idx], None if gates is None else gates[idx], v_m[idx], sub_da, sub_db,
                INNER_TOL_FRACTION * largest[:, None])
            active[np.arange(len(v))[idx][done]] = False
            if not active.any():
                return v, v_m
        v[active] = np.nan
        return v, v_m

    def _ports_accurate(self, v: np.ndarray, error_a: np.ndarray) -> np.ndarray:
        """Per vector: whether current errors error_a (batch, ports) [A] at the ports are below
        PORT_RTOL of the current each port delivers into its sources, or at its rounding floor.
        The reported row and column currents are those differences: a sense node held at 1 V with
        1 nA flowing needs its neighbour right to 1e-15 V, far below vtol_v."""
        if not len(self.ports):
            return np.ones(len(v), dtype=bool)
        held = -rows_times(v[:, self.circuit.fixed], self.port_coupling)  # Σ g·v over the sources
        own = self.port_g[self.ports] * v[:, self.free[self.ports]]
        floor = PORT_RTOL * np.abs(own - held) + 8 * np.finfo(float).eps * (np.abs(own) + np.abs(held))
        return np.all(error_a <= floor, axis=1)

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


def leaving_currents(circuit: Circuit, v: np.ndarray, gates) -> np.ndarray:
    """Net current (batch, n_nodes) leaving each node through all elements, from node voltages."""
    out = rows_times(v, _full_linear_laplacian(circuit))  # wires and linear cell devices; symmetric
    if not is_linear(circuit):
        m, b = circuit.inner_node.ravel(), circuit.col_node.ravel()
        through = inner_current(circuit, v[:, m], v[:, b], gates)[0]
        out += rows_times(through, incidence(m, b, circuit.n_nodes).T.tocsr())
    return out
