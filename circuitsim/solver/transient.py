"""Transient nodal equations of a Circuit: C·dv/dt + i(v, x) = 0 at the free nodes, dx/dt = g(v, x)
for stateful cells, with the source voltages given as piecewise-linear waveforms.

Filled in below: the capacitance matrix and the energies both engines report.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.integrate import cumulative_trapezoid

from circuitsim.circuit import GROUND, Circuit
from circuitsim.devices.memristors import StateDevice
from circuitsim.errors import ConvergenceError
from circuitsim.solver.cells import inner_current, solve_cells
from circuitsim.solver.dc import gate_voltages, incidence, operating_point
from circuitsim.solver.linear import describe, laplacian
from circuitsim.solver.ordering import elimination_order, factorize, single_threaded_blas


@dataclass(frozen=True, eq=False)
class Waves:
    """What a transient engine hands back at its output times time_s (T,): source_currents
    (T, n_fixed) [A] delivered into the circuit; source_charge_c (T, n_fixed) [C] and
    source_energy_j (T,) [J] the sources delivered since t = 0; with detail, node_volts
    (T, n_nodes) [V] (NaN where a node has no DC path), cell_currents (T, cells) [A] and, for
    stateful cells, state (T, cells); stored_energy_j (T,) [J] in the capacitors, or None; extra:
    provenance (e.g. step counts)."""

    time_s: np.ndarray
    source_currents: np.ndarray
    source_charge_c: np.ndarray
    source_energy_j: np.ndarray
    node_volts: np.ndarray | None
    cell_currents: np.ndarray | None
    state: np.ndarray | None
    stored_energy_j: np.ndarray | None
    extra: dict


def capacitance_matrix(circuit: Circuit) -> sp.csr_matrix:
    """(n_nodes, n_nodes) capacitance matrix [F]: a capacitor to ground stamps its diagonal only."""
    a, b, c = circuit.cap_a, circuit.cap_b, circuit.cap_farad
    to_node = b != GROUND
    rows = np.concatenate([a, b[to_node], a[to_node], b[to_node]])
    cols = np.concatenate([a, b[to_node], b[to_node], a[to_node]])
    vals = np.concatenate([c, c[to_node], -c[to_node], -c[to_node]])
    n = circuit.n_nodes
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def stored_energy(circuit: Circuit, node_volts: np.ndarray) -> np.ndarray:
    """Energy [J] in the capacitors, ½·Σ C·(v_a − v_b)², for node voltages (..., n_nodes)."""
    v = np.nan_to_num(node_volts)  # nodes with no DC path carry no capacitor
    v_b = np.where(circuit.cap_b == GROUND, 0.0, v[..., np.maximum(circuit.cap_b, 0)])
    return 0.5 * np.sum(circuit.cap_farad * (v[..., circuit.cap_a] - v_b) ** 2, axis=-1)


def delivered(time_s: np.ndarray, source_volts: np.ndarray, source_currents: np.ndarray):
    """(charge (T, n_fixed) [C], energy (T,) [J]) the sources delivered from time_s[0] to each time
    point: the trapezoid rule over their currents and over Σ v·i, (T, n_fixed) each."""
    power = np.sum(source_volts * source_currents, axis=1)
    return (cumulative_trapezoid(source_currents, time_s, axis=0, initial=0.0),
            cumulative_trapezoid(power, time_s, initial=0.0))


def node_currents(circuit: Circuit, node_volts: np.ndarray, cell_currents: np.ndarray, gates) -> np.ndarray:
    """Net current (T, n_nodes) leaving each node through the wires, the cells' devices (their
    currents (T, cells) given: linear or stateful) and the selectors or transistors; no capacitor."""
    out = node_volts @ laplacian(circuit.res_a, circuit.res_b, 1.0 / circuit.res_ohm, circuit.n_nodes)
    out += cell_currents @ incidence(circuit.cell_hi, circuit.cell_lo, circuit.n_nodes)
    if circuit.inner_node is not None:
        m, b = circuit.inner_node.ravel(), circuit.col_node.ravel()
        out += inner_current(circuit, node_volts[:, m], node_volts[:, b], gates)[0] @ incidence(m, b, circuit.n_nodes)
    return out


@dataclass(frozen=True)
class StepOptions:
    """Error control of the numpy engine's integrator.

    rtol: local error allowed per step, relative to full scale: the largest source voltage for
    node voltages, each source kind's largest current (DC estimate or seen so far) for the line
    currents; xtol: the same for normalized device states; max_step_s: largest step [s] (None:
    the drive's segments only bound it); newton_iter: chord-Newton iterations per attempt;
    newton_frac: Newton stops when its update is below this fraction of the step's tolerance;
    max_steps: a run needing more steps stops with a ConvergenceError."""

    rtol: float = 1e-5
    xtol: float = 1e-6
    max_step_s: float | None = None
    newton_iter: int = 10
    newton_frac: float = 1e-2
    max_steps: int = 1_000_000


LTE_FACTOR = 1 / 3  # local error of BDF2 (and BE) ≈ this × |corrector − predictor| (see _Integrator.step)
MAX_HALVINGS = 6  # a rejected step shrinks by at most 2**6 at once
REUSE_WITHIN = 0.2  # a factorization serves a step whose a0/h is within 20 % of its own (chord Newton)
CACHE_BYTES = 1.5e9  # factorizations kept for the step sizes visited (e.g. down to a breakpoint and back up)


class TransientSystem:
    """The nodal equations of a circuit in time, on its unknown nodes U (not held by a source, not
    cut off from every source):

        C·dv/dt + G·v + Σ branch currents = 0 at U,

    G: the wires (and linear 1R cells); branches: stateful devices (row side -> inner or column
    node, current(v, x), dx/dt = dxdt(v, x)) and the series elements. Linear cells with a selector
    or transistor are one branch row -> column whose inner node the DC solver's dc.solve_cells
    settles exactly (no capacitance sits there, so it is algebraic; the system keeps the size of a
    1R array); behind a stateful device the inner node is an unknown and the selector or
    transistor a branch inner -> column (cells.inner_current). Source currents are the same sums at
    the fixed nodes.
    """

    def __init__(self, circuit: Circuit, cells: list[StateDevice] | None):
        self.circuit, self.cells = circuit, cells
        n = circuit.n_nodes
        has_inner = circuit.inner_node is not None
        self.reduced = cells is None and has_inner
        self.linear = cells is None and not has_inner
        plain = self.linear  # 1R cells are conductances in G
        a = np.concatenate([circuit.res_a, circuit.cell_hi if plain else []]).astype(int)
        b = np.concatenate([circuit.res_b, circuit.cell_lo if plain else []]).astype(int)
        g = np.concatenate([1.0 / circuit.res_ohm, circuit.cell_g if plain else []])
        self.g_lin = laplacian(a, b, g, n)
        self.cap = capacitance_matrix(circuit)
        present = np.flatnonzero(circuit.cell_g > 0)
        self.present = present
        # stateful device branches (present cells only) and series-element branches (live cells)
        self.dev_a = np.empty(0, int) if cells is None else circuit.cell_hi[present]
        self.dev_b = np.empty(0, int) if cells is None else circuit.cell_lo[present]
        self.live = np.empty(0, int)
        self.in_a = self.in_b = np.empty(0, int)
        if self.reduced:
            self.live = np.arange(len(circuit.cell_g))
            self.in_a, self.in_b = circuit.row_node.ravel(), circuit.col_node.ravel()
            self.v_m = None  # inner-node voltages of the last evaluation: the next one's start
        elif has_inner:
            inner = circuit.inner_node.ravel()
            self.live = np.flatnonzero(~circuit.dead[inner])
            self.in_a, self.in_b = inner[self.live], circuit.col_node.ravel()[self.live]
        self.dev_inc = incidence(self.dev_a, self.dev_b, n).T.tocsr()
        self.in_inc = incidence(self.in_a, self.in_b, n).T.tocsr()
        unknown = ~circuit.dead
        unknown[circuit.fixed] = False
        inner_u = np.zeros(n, dtype=bool)
        if has_inner and not self.reduced:
            inner_u[circuit.inner_node.ravel()] = True
        inner_u &= unknown
        if self.reduced:
            unknown[circuit.inner_node.ravel()] = False
        rest = np.flatnonzero(unknown & ~inner_u)
        # inside-cell nodes first (two neighbours each: eliminating them fills nothing new), then the
        # wires in nested-dissection order
        self.u = np.concatenate([np.flatnonzero(inner_u), rest])
        self.order = np.concatenate([np.arange(inner_u.sum()), inner_u.sum() + elimination_order(circuit, rest)])
        index = np.full(n, -1)
        index[self.u] = np.arange(len(self.u))
        self.index = index
        self.g_uu = sp.csc_matrix(self.g_lin[self.u][:, self.u])
        self.c_uu = sp.csc_matrix(self.cap[self.u][:, self.u])
        self.symmetric = circuit.xb.transistor is None
        self.groups = _device_groups([cells[k] for k in present]) if cells is not None else {}
        self.label = describe(circuit)

    # --- cells -------------------------------------------------------------------------------
    def device(self, method: str, v_dev: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A stateful device method (current, slope, dxdt) for the present cells (v_dev, x per present cell)."""
        out = np.empty_like(x)
        for device, ks in self.groups.items():
            out[ks] = getattr(device, method)(v_dev[ks], x[ks])
        return out

    def gates(self, v: np.ndarray) -> np.ndarray | None:
        g = gate_voltages(self.circuit, v[None, self.circuit.fixed])
        return None if g is None else g[0, self.live]

    def branches(self, v: np.ndarray, x: np.ndarray | None, gates):
        """Branch currents and their derivatives: (dev_i, dev_g), (in_i, in_da, in_db)."""
        dev = (np.empty(0), np.empty(0))
        if self.cells is not None:
            v_dev = v[self.dev_a] - v[self.dev_b]
            dev = (self.device("current", v_dev, x), self.device("slope", v_dev, x))
        inner = (np.empty(0),) * 3
        if self.reduced:  # settles the inner nodes too: v[inner] holds them afterwards
            v_m, *inner = solve_cells(self.circuit, v[self.in_a], v[self.in_b], gates, v_m=self.v_m)
            v[self.circuit.inner_node.ravel()] = self.v_m = v_m
        elif len(self.in_a):
            inner = inner_current(self.circuit, v[self.in_a], v[self.in_b], gates)
        return dev, inner

    def leaving(self, v: np.ndarray, v_dot: np.ndarray | None, dev, inner) -> np.ndarray:
        """Net current [A] leaving every node (n_nodes,)."""
        out = self.g_lin @ v
        if v_dot is not None and self.cap.nnz:
            out += self.cap @ v_dot
        if len(dev[0]):
            out += self.dev_inc @ dev[0]
        if len(inner[0]):
            out += self.in_inc @ inner[0]
        return out

    def jacobian(self, c_over_h: float, dev, inner) -> sp.csc_matrix:
        """d(leaving)/dv on the unknowns: G + (a0/h)·C + the branch stamps."""
        m = len(self.u)
        matrix = self.g_uu + c_over_h * self.c_uu if c_over_h else self.g_uu.copy()
        stamps = []
        if len(dev[1]):
            stamps.append((self.dev_a, self.dev_b, dev[1], -dev[1]))
        if len(inner[0]):
            stamps.append((self.in_a, self.in_b, inner[1], inner[2]))
        if not stamps:
            return matrix
        rows, cols, vals = [], [], []
        for a, b, da, db in stamps:
            ia, ib = self.index[a], self.index[b]
            for r, c, val in ((ia, ia, da), (ia, ib, db), (ib, ia, -da), (ib, ib, -db)):
                keep = (r >= 0) & (c >= 0)
                rows.append(r[keep])
                cols.append(c[keep])
                vals.append(val[keep])
        return matrix + sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                      shape=(m, m))

    def factor(self, matrix: sp.spmatrix):
        return factorize(matrix, self.order, symmetric=self.symmetric, label=self.label)


def _device_groups(cells: list[StateDevice]) -> dict:
    """Present cells grouped by device (devices differing only in x0 share one evaluation)."""
    groups: dict = {}
    for k, device in enumerate(cells):
        groups.setdefault(device.with_state(0.5), []).append(k)
    return {d: np.array(ks) for d, ks in groups.items()}


def _lagrange(ts: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Weights (..., len(ts)) of the polynomial through the points ts, evaluated at t."""
    t = np.asarray(t, dtype=float)[..., None]
    weights = np.ones(t.shape[:-1] + (len(ts),))
    for j, tj in enumerate(ts):
        for m, tm in enumerate(ts):
            if m != j:
                weights[..., j] *= (t[..., 0] - tm) / (tj - tm)
    return weights


def interpolate(ts: np.ndarray, values: np.ndarray, t_out: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """values (N, ...) at the step times ts (N,) interpolated at t_out by the quadratic through the
    step's ends and its neighbour (the order of the integrator): the step before, or after a
    corner of the drive (corners: (N,) bool), where the waveform has a kink, the step after;
    linear where neither lies on the same side of every corner."""
    k = np.clip(np.searchsorted(ts, t_out, side="right") - 1, 0, len(ts) - 2)
    last = len(ts) - 1
    start = np.where(corners[k], np.where((k + 2 <= last) & ~corners[np.minimum(k + 1, last)], k, -1),
                     np.where(k >= 1, k - 1, -1))
    out = np.empty((len(t_out),) + values.shape[1:])
    for first, step in set(zip(start.tolist(), k.tolist())):
        part = np.flatnonzero((start == first) & (k == step))
        stencil = slice(first, first + 3) if first >= 0 else slice(step, step + 2)
        out[part] = np.tensordot(_lagrange(ts[stencil], t_out[part]), values[stencil], axes=1)
    return out


class _Integrator:
    """Variable-step BDF2 (backward Euler for the first step) on a TransientSystem.

    Steps end on every corner of the piecewise-linear drive. The local error is estimated from
    the difference between the implicit solution and a quadratic extrapolation of the last
    steps (node voltages, source currents, states); a step that misses the tolerance is redone
    shorter, and the step doubles when the error is small. Newton is a chord iteration: the
    factorization of G + (a0/h)·C + branch stamps is kept while the step size stays and Newton
    keeps converging (for linear cells one solve per step is exact).
    """

    def __init__(self, system: TransientSystem, time_s: np.ndarray, volts: np.ndarray, opts: StepOptions):
        self.s, self.time_s, self.volts, self.opts = system, time_s, volts, opts
        self.tol_v = opts.rtol * max(np.max(np.abs(volts)), 1e-3)
        self.cache: dict[float, object] = {}
        self.capacity: int | None = None
        self.stats = {"steps": 0, "rejected": 0, "factorizations": 0, "solves": 0}
        self.fixed = system.circuit.fixed
        self.x0 = None if system.cells is None else np.array([system.cells[k].x0 for k in system.present])

    def sources(self, t: float) -> np.ndarray:
        """Source voltages (n_fixed,) at time t (the drive is linear between its points)."""
        k = min(max(np.searchsorted(self.time_s, t, side="right") - 1, 0), len(self.time_s) - 2)
        frac = (t - self.time_s[k]) / (self.time_s[k + 1] - self.time_s[k])
        return self.volts[k] + frac * (self.volts[k + 1] - self.volts[k])

    def _factor(self, matrix):
        self.stats["factorizations"] += 1
        return self.s.factor(matrix)

    def operating_point(self, fixed_volts: np.ndarray) -> np.ndarray:
        """DC node voltages (dead nodes at 0) with the sources at fixed_volts and states at x0: the
        DC solver's for linear cells, a damped Newton here for stateful ones."""
        s = self.s
        v = np.zeros(s.circuit.n_nodes)
        v[self.fixed] = fixed_volts
        if not np.any(fixed_volts) or not len(s.u):
            return v
        if s.cells is None:
            v = operating_point(s.circuit, fixed_volts[None]).node_volts[0]
            v[s.circuit.dead] = 0.0
            return v
        gates = s.gates(v)
        for _ in range(100):
            dev, inner = s.branches(v, self.x0, gates)
            step = -self._factor(s.jacobian(0.0, dev, inner)).solve(s.leaving(v, None, dev, inner)[s.u])
            largest = np.max(np.abs(step))
            v[s.u] += step * min(1.0, 0.2 / max(largest, 1e-300))
            if largest < self.opts.newton_frac * self.tol_v:
                return v
        raise ConvergenceError(f"{s.label}: the transient's DC operating point did not converge")

    def current_scale(self) -> np.ndarray:
        """Full scale (n_fixed,) [A] of each source's current: the largest DC current of its kind
        (drivers, senses, gates) with the sources at the drive's largest point."""
        s, kind = self.s, self.s.circuit.fixed_kind
        peak = self.volts[np.argmax(np.max(np.abs(self.volts), axis=1))]
        try:
            v = self.operating_point(peak)
        except ConvergenceError:
            return np.zeros(len(self.fixed))
        dev, inner = s.branches(v, self.x0, s.gates(v))
        current = np.abs(s.leaving(v, None, dev, inner)[self.fixed])
        per_kind = np.zeros(3)
        np.maximum.at(per_kind, kind, current)
        return per_kind[kind]

    def states(self, v: np.ndarray, x: np.ndarray, a0: float, h: float, x_hist: np.ndarray) -> np.ndarray:
        """States at the end of a step: a0·x + x_hist = h·dxdt(v, x) per cell, by scalar Newton."""
        s = self.s
        v_dev = v[s.dev_a] - v[s.dev_b]
        for _ in range(30):
            rate = s.device("dxdt", v_dev, x)
            slope = (s.device("dxdt", v_dev, x + 1e-7) - rate) / 1e-7
            dx = -(a0 * x + x_hist - h * rate) / (a0 - h * slope)
            dx = np.clip(dx, -0.05, 0.05)
            x = x + dx
            if np.max(np.abs(dx), initial=0.0) < 1e-3 * self.opts.xtol:
                break
        return x

    def _cached(self, key: float):
        """(factorization, exact) for a step whose Jacobian has a0/h = key: the cached one at key, or
        the nearest within REUSE_WITHIN (most recently used last), or (None, False)."""
        best = min(self.cache, key=lambda k: abs(np.log(k / key)), default=None)
        if best is None or abs(best / key - 1) > REUSE_WITHIN:
            return None, False
        self.cache[best] = self.cache.pop(best)
        return self.cache[best], best == key

    def _store(self, key: float, factor):
        """Cache a factorization, dropping the least recently used beyond the memory budget."""
        if self.capacity is None:  # the factors' size is the same at every step size (one pattern)
            self.capacity = int(np.clip(CACHE_BYTES / (16 * max(factor.nnz, 1)), 2, 32))
        capacity = self.capacity
        while len(self.cache) >= capacity:
            self.cache.pop(next(iter(self.cache)))
        self.cache[key] = factor
        return factor

    def _key_of(self, factor) -> float | None:
        return next((k for k, f in self.cache.items() if f is factor), None)

    def newton(self, factor, exact: bool, v, x, coeffs, h, gates):
        """Chord Newton for one step from the predicted v, x (exact: a linear circuit with its own
        factorization, solved in one step). Returns (v, x, dev, inner) or None."""
        s, opts = self.s, self.opts
        a0, v_hist, x_hist = coeffs
        tol, last = opts.newton_frac * self.tol_v, np.inf
        for _ in range(opts.newton_iter):
            if x is not None:
                x = self.states(v, x, a0, h, x_hist)
            dev, inner = s.branches(v, x, gates)
            step = -factor.solve(s.leaving(v, (a0 * v + v_hist) / h, dev, inner)[s.u])
            self.stats["solves"] += 1
            largest = np.max(np.abs(step), initial=0.0)
            if not np.isfinite(largest) or largest > 2 * last:
                return None
            v[s.u] += step * min(1.0, 0.5 / max(largest, 1e-300))
            if exact:
                return v, x, dev, inner
            rate = largest / last  # the chord's contraction: what is left after this update ≈ largest·rate/(1−rate)
            if largest < tol or (np.isfinite(last) and rate < 0.5 and largest * rate / (1 - rate) < tol):
                if x is not None:
                    x = self.states(v, x, a0, h, x_hist)
                return (v, x, *s.branches(v, x, gates)) if not s.linear else (v, x, dev, inner)
            last = largest
        return None

    def step(self, t: float, h: float, past: list) -> tuple | None:
        """One step from t to t + h with past [(t, v, x, source currents), ...] (newest last):
        (v, x, source currents, error / tolerance), or None if Newton failed."""
        s, t_new = self.s, t + h
        if len(past) >= 2:
            omega = h / (past[-1][0] - past[-2][0])
            if abs(np.log2(omega) - round(np.log2(omega))) < 1e-9:  # sizes are h_ref·2^k: snap the rounding
                omega = 2.0 ** round(np.log2(omega))
            a0, a1, a2 = (1 + 2 * omega) / (1 + omega), -(1 + omega), omega ** 2 / (1 + omega)
            v_hist = a1 * past[-1][1] + a2 * past[-2][1]
            x_hist = None if past[-1][2] is None else a1 * past[-1][2] + a2 * past[-2][2]
        else:
            a0, v_hist = 1.0, -past[-1][1]
            x_hist = None if past[-1][2] is None else -past[-1][2]
        weights = _lagrange(np.array([p[0] for p in past]), t_new)
        predicted = [sum(w * p[j] for w, p in zip(weights, past)) for j in (1, 2, 3)] if past[-1][2] is not None \
            else [sum(w * p[1] for w, p in zip(weights, past)), None, sum(w * p[3] for w, p in zip(weights, past))]
        v = predicted[0].copy()
        v[self.fixed] = self.sources(t_new)
        gates = s.gates(v)
        key = a0 / h
        factor, exact = self._cached(key)
        fresh = False
        for _ in range(2):
            if factor is None:
                dev, inner = s.branches(v, predicted[1], gates)
                # factorized for the constant-step BDF2 (a0 = 3/2) at this h, which the steps after a
                # change of step size use exactly; the change itself (a0 within 11 % of it) by chord
                at = 1.5 / h if len(past) >= 2 else key
                factor, fresh = self._store(at, self._factor(s.jacobian(at, dev, inner))), True
                exact = at == key
            solved = self.newton(factor, exact and s.linear, v.copy(), predicted[1], (a0, v_hist, x_hist), h, gates)
            if solved is not None or fresh:
                break
            self.cache.pop(self._key_of(factor), None)  # stale (nonlinear) or too far off: refactor here
            factor = None
        v, x, dev, inner = solved
        sources = s.leaving(v, (a0 * v + v_hist) / h, dev, inner)[self.fixed]
        u = s.u
        error = np.max(np.abs(v[u] - predicted[0][u]), initial=0.0) / self.tol_v
        if len(past) > 1:  # the source currents' predictor needs a slope: none on the first step
            error = max(error, np.max(np.abs(sources - predicted[2]) / self.current_tolerance(sources), initial=0.0))
        if x is not None:
            error = max(error, np.max(np.abs(x - predicted[1]), initial=0.0) / self.opts.xtol)
        return v, x, sources, LTE_FACTOR * error

    def current_tolerance(self, sources: np.ndarray) -> np.ndarray:
        """Tolerance (n_fixed,) [A] of each source current: rtol × the full scale of its kind, the DC
        estimate or the largest current of that kind so far, this step's included."""
        kind = self.s.circuit.fixed_kind
        np.maximum.at(self.seen, kind, np.abs(sources))
        return self.opts.rtol * np.maximum(self.scale, np.maximum(self.seen[kind], 1e-15))

    def corner_steps(self, t: float, h: float, past: list) -> tuple | None:
        """The first step after a corner of the drive, where nothing before the corner may be
        extrapolated: backward Euler over h against two half steps (backward Euler, then BDF2);
        their difference is the error estimate, the half steps are kept. (error / tolerance,
        [(t, v, x, source currents) of both half steps]) or None if Newton failed."""
        full, half = self.step(t, h, past), self.step(t, h / 2, past)
        if full is None or half is None:
            return None
        middle = (t + h / 2, *half[:3])
        second = self.step(t + h / 2, h / 2, past + [middle])
        if second is None:
            return None
        u = self.s.u
        error = np.max(np.abs(full[0][u] - second[0][u]), initial=0.0) / self.tol_v
        error = max(error, np.max(np.abs(full[2] - second[2]) / self.current_tolerance(second[2]), initial=0.0))
        if second[1] is not None:
            error = max(error, np.max(np.abs(full[1] - second[1]), initial=0.0) / self.opts.xtol)
        return error, [middle, (t + h, *second[:3])]

    def run(self, t_out: np.ndarray, detail: bool) -> Waves:
        s, opts = self.s, self.opts
        circuit, duration = s.circuit, self.time_s[-1]
        self.scale, self.seen = self.current_scale(), np.zeros(3)
        v = self.operating_point(self.volts[0])
        x = None if self.x0 is None else self.x0.copy()
        dev, inner = s.branches(v, x, s.gates(v))
        sources = s.leaving(v, None, dev, inner)[self.fixed]
        past = [(0.0, v, x, sources)]
        records = {"t": [0.0], "corner": [True], "i": [sources], "q": [np.zeros_like(sources)], "e": [0.0],
                   "stored": [stored_energy(circuit, v)],
                   "v": [v] if detail else None, "x": [x] if detail and x is not None else None}
        power = float(self.volts[0] @ sources)
        # steps are h_ref·2^k, so the sizes met again (after a breakpoint) find their factorization cached
        h_ref = min(np.diff(self.time_s).min(), opts.max_step_s or np.inf) / 64
        h_max = opts.max_step_s or np.inf
        k, t, since_change, restart = 0, 0.0, 0, True
        for _ in range(opts.max_steps):
            if t >= duration:
                break
            t_break = self.time_s[np.searchsorted(self.time_s, t * (1 + 1e-12) + 1e-300, side="right")]
            if restart:  # a corner of the drive: no extrapolation across it, a first step of at most h_ref
                past, k, since_change = past[-1:], min(k, 0), 0
            h = h_ref * 2.0 ** k
            h_try = min(h, t_break - t)
            if t_break - t - h_try < 0.05 * h_try:
                h_try = t_break - t
            t_end = t_break if h_try == t_break - t else t + h_try
            outcome = self.corner_steps(t, h_try, past) if restart else self.step(t, h_try, past)
            if outcome is not None:  # the step ends exactly at t_end (a corner, when it reaches one)
                outcome = (outcome[0], [outcome[1][0], (t_end, *outcome[1][1][1:])]) if restart \
                    else (outcome[3], [(t_end, *outcome[:3])])
            if outcome is None or outcome[0] > 1:
                self.stats["rejected"] += 1
                halvings = 2 if outcome is None else np.ceil(np.log2(max(outcome[0], 1.0) ** (1 / 3) / 0.8))
                k = int(np.floor(np.log2(h_try / h_ref))) - int(np.clip(halvings, 1, MAX_HALVINGS))
                since_change = 0
                if h_ref * 2.0 ** k < 1e-12 * duration:
                    raise ConvergenceError(f"{s.label}: the transient's step fell below 1e-12 of the duration "
                                           f"at t = {t:.4g} s")
                continue
            error, points = outcome
            for t_new, v, x, sources in points:
                t_prev, t = t, t_new
                self.stats["steps"] += 1
                new_power = float(self.sources(t) @ sources)
                records["t"].append(t)
                records["corner"].append(t == t_break)
                records["i"].append(sources)
                records["q"].append(records["q"][-1] + 0.5 * (records["i"][-2] + sources) * (t - t_prev))
                records["e"].append(records["e"][-1] + 0.5 * (power + new_power) * (t - t_prev))
                records["stored"].append(stored_energy(circuit, v))
                if detail:
                    records["v"].append(v)
                    if x is not None:
                        records["x"].append(x)
                power = new_power
                past = (past + [(t, v, x, sources)])[-3:]
            since_change, restart = since_change + 1, t == t_break
            if error < 0.4 ** 3 and since_change >= 2 and h_try >= h:
                # double, or quadruple where the error is tiny: a one-off ratio of 4 amplifies BDF2's
                # parasitic error component by ω²/(1+2ω) = 1.8 once, harmless at 1/1000 of the tolerance
                grow = 2 if error < 1e-3 and 4 * h <= h_max else 1 if 2 * h <= h_max else 0
                k, since_change = k + grow, 0 if grow else since_change
        else:
            raise ConvergenceError(f"{s.label}: the transient needed more than {opts.max_steps} steps")
        return self._waves(records, t_out, detail)

    def _waves(self, records: dict, t_out: np.ndarray, detail: bool) -> Waves:
        s, circuit = self.s, self.s.circuit
        ts, corners = np.array(records["t"]), np.array(records["corner"])

        def at_outputs(name):
            return interpolate(ts, np.array(records[name]), t_out, corners)

        sources, charge, energy, stored = at_outputs("i"), at_outputs("q"), at_outputs("e"), at_outputs("stored")
        extra = {**self.stats, "engine_steps": len(ts) - 1}
        if not detail:
            return Waves(t_out, sources, charge, energy, None, None, None, stored, extra)
        v = at_outputs("v")
        cells = np.zeros((len(t_out), len(circuit.cell_g)))
        state = None
        across = v[:, circuit.cell_hi[s.present]] - v[:, circuit.cell_lo[s.present]]
        if s.cells is None:
            cells[:, s.present] = across * circuit.cell_g[s.present]
        else:
            x = at_outputs("x")
            cells[:, s.present] = np.stack([s.device("current", a, xs) for a, xs in zip(across, x)])
            state = np.tile([d.x0 for d in s.cells], (len(t_out), 1))
            state[:, s.present] = x
        v[:, circuit.dead] = np.nan
        return Waves(t_out, sources, charge, energy, v, cells, state, stored, extra)


def integrate(circuit: Circuit, cells: list[StateDevice] | None, time_s: np.ndarray, volts: np.ndarray,
              t_out: np.ndarray, *, detail: bool = True, opts: StepOptions = StepOptions()) -> Waves:
    """The transient of circuit under PWL source voltages volts (n_times, n_fixed) at time_s, from
    its DC operating point at t = 0 (states at their x0), reported at t_out [s].

    cells: None for the circuit's linear cells, or one stateful device per cell. detail: also node
    voltages, cell currents and states at t_out (otherwise only what the sources see: large arrays
    keep no node voltage beyond the last three steps)."""
    with single_threaded_blas():
        return _Integrator(TransientSystem(circuit, cells), time_s, volts, opts).run(t_out, detail)
