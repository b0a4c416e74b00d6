"""Exact nodal solution of a Circuit with scipy sparse LU.

Linear arrays: one factorization serves the whole batch (and gives the transfer matrix).
Nonlinear cells (device in series with a selector or an access transistor): each cell is
reduced to one two-terminal branch by solving its inner node exactly (a monotone scalar
equation, bracketed Newton), so the array system keeps the size and pattern of the linear
one and the cell's current is bounded by its device conductance. The batch is then solved
together by Newton with a Jacobian shared across the batch (one factorization per
iteration for all vectors); vectors it leaves unconverged get their own Newton, and source
stepping is the last resort.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from circuitsim.circuit import Circuit
from circuitsim.errors import ConvergenceError, IllConditionedError
from circuitsim.solver.linear import BLOCK_VALUES, LinearSystem, describe, laplacian
from circuitsim.solver.ordering import elimination_order, factorize
from circuitsim.solver.shorts import find_shorts

NEWTON_CHUNK = 64  # vectors per Newton batch
TRUST_BELOW_KCL = 1e-6  # KCL residual of a Newton solution, relative to the currents at the node


@dataclass(frozen=True)
class NewtonOptions:
    """vtol_v: converged when the largest node update is below this [V], or when every KCL
    residual is below reltol_kcl × (largest node conductance × drive voltage), the rounding
    floor of ill-conditioned arrays; max_step_v: Newton steps are scaled down to this [V];
    shared_iter: iterations with the batch-shared Jacobian; max_iter: iterations of a
    single-vector Newton; source_steps: ramp points of the source-stepping fallback;
    cell_iter: bracketed Newton iterations for the inner node of a cell."""

    vtol_v: float = 1e-9
    reltol_kcl: float = 1e-13
    max_step_v: float = 0.5
    shared_iter: int = 40
    max_iter: int = 100
    source_steps: int = 10
    cell_iter: int = 100


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


def inner_current(circuit: Circuit, v_m, v_b, gate_v):
    """Current from the inner node to the column wire through the selector or transistor,
    with its derivatives with respect to v_m and v_b."""
    xb = circuit.xb
    if xb.selector is not None:
        i, g = xb.selector.current(v_m - v_b)
        return i, g, -g
    return xb.transistor.drain_current(v_m, gate_v, v_b)


def solve_cells(circuit: Circuit, v_r, v_b, gate_v, opts: NewtonOptions = NewtonOptions(), v_m=None):
    """Inner-node voltage and current of every cell for given wire voltages (batch, cells).

    Solves G·(v_r − v_m) = f(v_m, v_b) by Newton kept inside the bracket between v_b and
    v_r (the root is there because f is increasing in v_m and zero at v_m = v_b), bisecting
    where a Newton step leaves the bracket or does not halve the step before last (rtsafe,
    Numerical Recipes §9.4): past a steep selector's knee Newton alone crawls; v_m, if
    given, is the starting guess. Returns v_m, i, di/dv_r, di/dv_b.
    """
    g = circuit.cell_g
    lo, hi = np.minimum(v_r, v_b), np.maximum(v_r, v_b)
    v_m = 0.5 * (lo + hi) if v_m is None else np.clip(v_m, lo, hi)
    step = step_before = hi - lo
    for _ in range(opts.cell_iter):
        f, f_m, _ = inner_current(circuit, v_m, v_b, gate_v)
        resid = g * (v_r - v_m) - f
        # shrink the bracket with the sign of the residual (decreasing in v_m)
        lo = np.where(resid > 0, v_m, lo)
        hi = np.where(resid < 0, v_m, hi)
        newton = resid / (g + f_m)
        trial = v_m + newton
        half, size = 0.5 * (hi - lo), np.abs(newton)
        tol = 1e-14 + 1e-14 * np.max(np.abs(hi), initial=0.0)
        bisect = (trial < lo) | (trial > hi) | ((2 * size > step_before) & (size > tol))
        v_m = np.where(bisect, lo + half, trial)
        step_before, step = step, np.where(bisect, half, size)
        if np.max(step, initial=0.0) < tol:
            break
    v_m = np.where(g > 0, v_m, v_b)
    f, f_m, f_b = inner_current(circuit, v_m, v_b, gate_v)
    denom = g + f_m
    # the current from the less steep of the two branches: rounding of v_m costs the least there
    i = np.where(g <= f_m, g * (v_r - v_m), f)
    return v_m, i, g * f_m / denom, g * f_b / denom


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


@dataclass(frozen=True)
class Solution:
    """node_volts (batch, n_nodes) [V]; source_currents (batch, n_fixed) [A] delivered into the
    circuit by each source; cell_currents (batch, cells) [A] from the row side to the column side."""

    node_volts: np.ndarray
    source_currents: np.ndarray
    cell_currents: np.ndarray


def linear_source_currents(circuit: Circuit, fixed_volts: np.ndarray) -> np.ndarray:
    """Source currents (batch, n_fixed) of a linear circuit through the sources' conductance matrix
    (solver/linear.py), no node voltage stored; BLAS single-threaded as in solve()."""
    with _blas().limit(limits=1, user_api="blas"):
        return LinearSystem(circuit, free_nodes(circuit), ports_last=True).source_currents(fixed_volts)


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
    cells_across = circuit.row_node.ravel(), circuit.col_node.ravel()  # a cell conducts at most cell_g
    shorts = find_shorts(np.r_[circuit.res_a, cells_across[0]], np.r_[circuit.res_b, cells_across[1]],
                         np.r_[1.0 / circuit.res_ohm, circuit.cell_g], circuit.fixed, circuit.n_nodes)
    if shorts is not None and np.any(shorts.branch < len(circuit.res_a)):  # cells: their selector limits them
        raise IllConditionedError(f"{describe(circuit)}: some wires conduct over 1e8 times more than everything "
                                  "else at their ends; the numpy engine merges such near-shorts only in 1R arrays")
    system = _ReducedSystem(circuit, free_nodes(circuit), opts)
    # chunks of vectors: a batch's working arrays stay bounded, and a Jacobian shared by fewer,
    # less diverse vectors contracts better (PERF_NOTES.md: 1.4-1.8x at chunks of ~64)
    chunk = max(1, min(NEWTON_CHUNK, BLOCK_VALUES // circuit.n_nodes))
    parts = [_newton_chunk(system, fixed_volts[start:start + chunk]) for start in range(0, len(fixed_volts), chunk)]
    return Solution(*(np.concatenate(arrays) for arrays in zip(*parts)))


def _newton_chunk(system: _ReducedSystem, fixed_volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    circuit, opts = system.circuit, system.opts
    v = np.zeros((len(fixed_volts), circuit.n_nodes))
    v[:, circuit.fixed] = fixed_volts
    gates = gate_voltages(circuit, fixed_volts)
    if len(system.free):
        v = system.newton(v, gates, shared=True)
        for k in np.flatnonzero(np.isnan(v[:, 0])):
            v[k] = system.single(fixed_volts[k], None if gates is None else gates[k])
    v_m, cell_i, _, _ = solve_cells(circuit, v[:, circuit.row_node.ravel()], v[:, circuit.col_node.ravel()],
                                    gates, opts)
    v[:, circuit.inner_node.ravel()] = v_m
    if len(system.free):
        _check_kcl(system, v, cell_i)
    return v, leaving_currents(circuit, v, gates)[:, circuit.fixed], cell_i


def _check_kcl(system: _ReducedSystem, v: np.ndarray, cell_i: np.ndarray) -> None:
    """Refuse a Newton solution whose KCL residual at some node exceeds TRUST_BELOW_KCL of the
    currents meeting there (one sparse matvec: the guard against a quietly wrong answer)."""
    wires, cells = system.lap[:, system.free], system.cell_incidence[:, system.free]
    residual = v @ wires + cell_i @ cells
    scale = np.abs(v) @ abs(wires) + np.abs(cell_i) @ abs(cells)
    error = np.max(np.abs(residual) / np.where(scale > 0, scale, 1.0), initial=0.0)
    if error > TRUST_BELOW_KCL:
        raise ConvergenceError(f"{describe(system.circuit)}: Newton stopped with a KCL residual of {error:.2g} "
                               "of the currents at a node: not trustworthy")


class _ReducedSystem:
    """Wire Laplacian plus one nonlinear two-terminal branch per cell (row node – column node)."""

    def __init__(self, circuit: Circuit, free: np.ndarray, opts: NewtonOptions):
        self.circuit, self.free, self.opts = circuit, free, opts
        n = circuit.n_nodes
        self.lap = laplacian(circuit.res_a, circuit.res_b, 1.0 / circuit.res_ohm, n)
        self.lap_ff = sp.csc_matrix(self.lap[free][:, free])
        self.a, self.b = circuit.row_node.ravel(), circuit.col_node.ravel()
        index = np.full(n, -1)
        index[free] = np.arange(len(free))
        self.fa, self.fb = index[self.a], index[self.b]  # -1: not an unknown
        self.cell_incidence = incidence(self.a, self.b, n)
        self.order = elimination_order(circuit, free)

    def _jacobian(self, da: np.ndarray, db: np.ndarray) -> sp.csc_matrix:
        """Wire part plus the cell stamps (da, db: derivatives per cell) on the unknowns."""
        fa, fb = self.fa, self.fb
        parts = [(fa, fa, da), (fa, fb, db), (fb, fa, -da), (fb, fb, -db)]
        rows = np.concatenate([r[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        cols = np.concatenate([c[(r >= 0) & (c >= 0)] for r, c, _ in parts])
        vals = np.concatenate([x[(r >= 0) & (c >= 0)] for r, c, x in parts])
        m = len(self.free)
        return self.lap_ff + sp.csc_matrix((vals, (rows, cols)), shape=(m, m))

    def residual(self, v: np.ndarray, gates, v_m: np.ndarray):
        """KCL residual on the unknowns (batch, free), the cell derivatives, and the inner-node
        voltages (v_m: the starting guess for them, e.g. from the previous iteration)."""
        v_m, i, da, db = solve_cells(self.circuit, v[:, self.a], v[:, self.b], gates, self.opts, v_m)
        leaving = v @ self.lap + i @ self.cell_incidence  # lap is symmetric; rows of v are vectors
        return leaving[:, self.free], da, db, v_m

    def newton(self, v: np.ndarray, gates, shared: bool) -> np.ndarray:
        """Newton on every row of v at once, with a Jacobian shared by the batch (the mean of
        the vectors' cell derivatives), refactorized only while the residual falls slowly, and
        a line search per vector (see _line_search). Vectors that do not converge come back as
        NaN rows."""
        opts = self.opts
        v = v.copy()
        drive = np.max(np.abs(v[:, self.circuit.fixed]), axis=1, initial=0.0)
        itol = opts.reltol_kcl * np.max(np.abs(self.lap.diagonal()), initial=1.0) * np.maximum(drive, 1.0)
        active = np.ones(len(v), dtype=bool)
        f, da, db, v_m = self.residual(v, gates, np.zeros((len(v), len(self.a))))
        lu, previous = None, np.inf
        for _ in range(opts.shared_iter if shared else opts.max_iter):
            idx = slice(None) if active.all() else np.flatnonzero(active)  # a slice gives views, not copies
            worst = np.max(np.abs(f[idx]), initial=0.0)
            if lu is None or worst > 0.5 * previous:
                try:  # a selector's stamp is symmetric (di/dv_b = −di/dv_r): then Cholesky
                    lu = factorize(self._jacobian(da[idx].mean(axis=0), db[idx].mean(axis=0)), self.order,
                                   symmetric=self.circuit.xb.selector is not None, label=describe(self.circuit))
                except ConvergenceError:
                    break
            previous = worst
            step = -lu.solve(f[idx].T).T
            largest = np.max(np.abs(step), axis=1, initial=0.0)
            step *= np.minimum(1.0, opts.max_step_v / np.maximum(largest, 1e-300))[:, None]
            done = (largest < opts.vtol_v) | (np.max(np.abs(f[idx]), axis=1, initial=0.0) < itol[idx])
            v[idx], f[idx], da[idx], db[idx], v_m[idx] = self._line_search(
                v[idx], step, f[idx], None if gates is None else gates[idx], v_m[idx])
            active[np.arange(len(v))[idx][done]] = False
            if not active.any():
                return v
        v[active] = np.nan
        return v

    def _line_search(self, v, step, f, gates, v_m, tries: int = 12):
        """v + t·step per vector, t in (0, 1], with everything residual() returns there.

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
        out = list(self.residual(trial, gates, v_m))
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
            found = self.residual(point, sub_gates, v_m[redo])
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
        v = self.newton(start, gates, shared=False)
        if not np.isnan(v[0, 0]):
            return v[0]
        v = np.zeros((1, self.circuit.n_nodes))
        for alpha in np.linspace(0, 1, self.opts.source_steps + 1)[1:]:
            v[0, self.circuit.fixed] = alpha * v_fixed
            v = self.newton(v, None if gates is None else alpha * gates, shared=False)
            if np.isnan(v[0, 0]):
                raise ConvergenceError(f"{describe(self.circuit)}: Newton did not converge even with source "
                                       f"stepping (stuck at {alpha:.0%} of the drive)")
        return v[0]


def leaving_currents(circuit: Circuit, v: np.ndarray, gates) -> np.ndarray:
    """Net current (batch, n_nodes) leaving each node through all elements, from node voltages."""
    out = v @ _full_linear_laplacian(circuit)  # wires and linear cell devices; symmetric
    if not is_linear(circuit):
        m, b = circuit.inner_node.ravel(), circuit.col_node.ravel()
        out += inner_current(circuit, v[:, m], v[:, b], gates)[0] @ incidence(m, b, circuit.n_nodes)
    return out
