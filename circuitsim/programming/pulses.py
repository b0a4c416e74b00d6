"""One write pulse on a whole array: the quasi-static pulse model, and the transient reference.

A write pulse lasts nanoseconds to milliseconds while the array's wires settle in picoseconds,
so within a pulse the line voltages are at their DC operating point for the cells' present
states. The quasi-static model (`apply_pulse`) therefore steps through the pulse's flat top:
at each step the numpy DC engine (solver.dc.solve, the engine behind simulate(engine="numpy"))
solves the array with every cell's chord conductance I(V, x)/V at its own voltage (iterated
until the device voltages settle, so nonlinear devices, selectors and access transistors are
exact), then every cell's state equation is integrated with its own device twin at that
voltage (explicit midpoint, steps limited to DX_STEP of state change per cell). Half-selected
and unselected cells are integrated the same way: their disturb comes out of the same
equations. The rising and falling edges are integrated at the flat-top device voltages
scaled by the edge (no DC solve: the edges are short and the states hardly move in them).

`apply_pulse_transient` runs the same pulse as a full transient of the array
(transient.array_transient, engine "spice" or "numpy"): the reference the quasi-static model
is tested against (tests/test_programming.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from circuitsim.circuit import build_circuit
from circuitsim.design import Crossbar
from circuitsim.devices.memristors import StateDevice
from circuitsim.errors import ConvergenceError
from circuitsim.solver.cells import inner_current
from circuitsim.solver.dc import gate_voltages
from circuitsim.solver.ordering import elimination_order
from circuitsim.transient import Drive, array_transient, pulse_times

SCHEMES = ("floating", "v/2", "v/3")
DX_STEP = 0.01  # largest state change of any cell in one quasi-static step [-]
NEWTON_VTOL_V = 1e-7  # Newton stops when no node moves by more than this [V] (rates change by ~1e-6 relative)
NEWTON_MAX_STEP_V = 0.2  # Newton steps are scaled down to this [V]
NEWTON_MAX_ITER = 100
EDGE_POINTS = 8  # midpoint steps across each edge (rate evaluations only, no DC solve)
G_FLOOR_S = 1e-15  # device slope floor (a cell at I = 0 still has a DC path for the solver)


class CellModels:
    """The stateful devices of an array (one per cell, row-major), evaluated together: cells
    whose devices differ only in x0 share one vectorized call."""

    def __init__(self, cells, shape: tuple[int, int]):
        rows, cols = shape
        if isinstance(cells, StateDevice):
            flat = [cells] * (rows * cols)
        elif np.shape(cells) == (rows, cols):
            flat = list(np.asarray(cells, dtype=object).reshape(-1))
        else:
            flat = None
        if flat is None or not all(isinstance(d, StateDevice) for d in flat):
            raise TypeError(f"cells must be one stateful device or a ({rows}, {cols}) array of them")
        self.shape, self.devices = shape, flat
        groups: dict[StateDevice, list[int]] = {}
        for k, device in enumerate(flat):
            groups.setdefault(device.with_state(0.5), []).append(k)
        self.groups = [(d, np.array(ks)) for d, ks in groups.items()]

    def rows(self, rows: Sequence[int]) -> CellModels:
        """The devices of the given rows, stacked, as a (len(rows), cols) CellModels sharing this
        one's groups (no new devices)."""
        cols = self.shape[1]
        cells = (np.asarray(rows)[:, None] * cols + np.arange(cols)).ravel()  # new position -> old cell
        where = np.full(len(self.devices), -1)
        where[cells] = np.arange(len(cells))
        sub = object.__new__(CellModels)
        sub.shape, sub.devices = (len(cells) // cols, cols), [self.devices[k] for k in cells]
        sub.groups = [(d, np.sort(where[ks][where[ks] >= 0])) for d, ks in self.groups]
        sub.groups = [(d, ks) for d, ks in sub.groups if len(ks)]
        return sub

    @property
    def initial_state(self) -> np.ndarray:
        return np.array([d.x0 for d in self.devices]).reshape(self.shape)

    def _eval(self, method: str, v, x) -> np.ndarray:
        v, x = np.broadcast_arrays(np.asarray(v, dtype=float).reshape(-1), np.asarray(x, dtype=float).reshape(-1))
        out = np.empty(x.shape)
        for device, ks in self.groups:
            out[ks] = getattr(device, method)(v[ks], x[ks])
        return out.reshape(self.shape)

    def current(self, v, x) -> np.ndarray:
        return self._eval("current", v, x)

    def dxdt(self, v, x) -> np.ndarray:
        return self._eval("dxdt", v, x)

    def slope(self, v, x) -> np.ndarray:
        return self._eval("slope", v, x)

    def read_conductance(self, x, v_read: float) -> np.ndarray:
        """Chord conductance I(v_read, x)/v_read [S] of every device: what a read-verify measures."""
        return self.current(v_read, x) / v_read

    def with_states(self, x: np.ndarray) -> np.ndarray:
        """(rows, cols) object array of the devices starting from states x."""
        out = np.empty(len(self.devices), dtype=object)
        out[:] = [d.with_state(float(np.clip(s, 0.0, 1.0))) for d, s in zip(self.devices, x.reshape(-1))]
        return out.reshape(self.shape)


@dataclass(frozen=True, eq=False)
class PulseBias:
    """Line voltages [V] at the pulse's full amplitude (each line follows the same trapezoid),
    floating line masks, and the gate voltage of every row [V] (1T1R arrays; None otherwise)."""

    v_rows: np.ndarray
    v_cols: np.ndarray
    floating_rows: np.ndarray
    floating_cols: np.ndarray
    v_gates: np.ndarray | None


def write_bias(shape: tuple[int, int], row: int, amplitudes_v: np.ndarray, scheme: str, *,
               v_gate: float | None = None, held_rows: np.ndarray | None = None,
               held_cols: np.ndarray | None = None) -> PulseBias:
    """Bias that writes the cells of `row` whose amplitudes_v (cols,) are non-zero, all in one pulse.

    Every amplitude has the same sign s (one polarity per pulse); with a = the largest |amplitude|,
    the selected row is at s·a and selected column j at s·(a − |a_j|), so cell j sees its own
    amplitude. Unselected rows sit at s·a/2 ("v/2"), s·a/3 ("v/3") or float; unselected columns
    at s·a/2, s·2a/3 or float. v_gate: the selected row's gate (1T1R; the other gates at 0 V).
    held_rows / held_cols: lines shorted to ground (faults), held at 0 V whatever is applied.
    """
    rows, cols = shape
    amplitudes = np.asarray(amplitudes_v, dtype=float)
    selected = amplitudes != 0
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
    signs = np.unique(np.sign(amplitudes[selected]))
    if not selected.any() or len(signs) != 1:
        raise ValueError("a write pulse needs at least one selected cell and one polarity")
    sign, a = float(signs[0]), float(np.abs(amplitudes).max())
    unsel_row, unsel_col = {"floating": (0.0, 0.0), "v/2": (a / 2, a / 2), "v/3": (a / 3, 2 * a / 3)}[scheme]
    v_rows, v_cols = np.full(rows, sign * unsel_row), np.full(cols, sign * unsel_col)
    v_rows[row] = sign * a
    v_cols[selected] = sign * (a - np.abs(amplitudes[selected]))
    floating_rows, floating_cols = np.full(rows, scheme == "floating"), ~selected & (scheme == "floating")
    floating_rows[row] = False
    for held, volts, floating in ((held_rows, v_rows, floating_rows), (held_cols, v_cols, floating_cols)):
        if held is not None:
            volts[held], floating[held] = 0.0, False
    gates = None
    if v_gate is not None:
        gates = np.zeros(rows)
        gates[row] = v_gate
    return PulseBias(v_rows, v_cols, floating_rows, floating_cols, gates)


@dataclass(frozen=True, eq=False)
class PulseOutcome:
    """What one pulse did: states (rows, cols) after it; energy_j delivered by all sources [J];
    cell_energy_j (rows, cols) dissipated in each cell (device and selector/transistor) [J];
    peak_current_a (rows, cols) largest |cell current| [A]; dc_solves: DC solutions used."""

    states: np.ndarray
    energy_j: float
    cell_energy_j: np.ndarray
    peak_current_a: np.ndarray
    dc_solves: int = 0


class OperatingPoint:
    """DC operating points of k arrays of one topology (same shape, selector or transistor,
    floating lines and zero-ohm wires; resistances and biases may differ) for changing cell states.

    The nodal equations of solver.dc (the numpy DC engine's circuit: wires, each cell's device
    from its row node to its inner node, the selector or transistor from there to the column
    node) with the devices' own nonlinear I(V, x), solved by damped Newton warm-started from the
    previous solution. The k arrays are independent circuits solved together: their nodal
    matrix is block diagonal. The sparse pattern and the positions of every stamp in it are
    found once per pulse, so an iteration costs one sparse LU. States, voltages and currents
    come as the k arrays stacked along rows: (k·rows, cols).
    """

    def __init__(self, arrays: Sequence[Crossbar], models: CellModels, biases: Sequence[PulseBias],
                 frozen: np.ndarray | None):
        self.models, self.frozen = models, frozen
        circuits = [build_circuit(xb, bias.floating_rows, bias.floating_cols) for xb, bias in zip(arrays, biases)]
        c = self.circuit = circuits[0]
        if any(_topology(other) != _topology(c) for other in circuits[1:]):
            raise ValueError("OperatingPoint: the arrays' circuits differ in topology")
        self.k = len(circuits)
        self.fixed = np.array([circ.fixed_voltages(bias.v_rows[None, :], bias.v_cols[None, :], _gates(bias))[0]
                               for circ, bias in zip(circuits, biases)]).reshape(self.k, len(c.fixed))
        self.gates = gate_voltages(c, self.fixed)
        self.open = np.tile((c.cell_g <= 0).reshape(c.xb.shape), (self.k, 1))
        self.solves = 0
        n = c.n_nodes
        free = np.setdiff1d(np.arange(n), c.fixed)
        self.free, self.m = free[_elimination_order(c, free)], len(free)  # unknowns in elimination order
        free = self.free
        index = np.full(n, -1)
        index[free] = np.arange(len(free))
        self.v = np.array([self._first_guess(bias, fixed) for bias, fixed in zip(biases, self.fixed)])
        self.lu = None  # the last Jacobian factorization, reused while it contracts (chord Newton)
        # branches: wires (linear), devices (row node -> cell_lo), access (inner node -> column node)
        self.dev = (c.cell_hi, c.cell_lo)
        self.acc = None if c.inner_node is None else (c.inner_node.ravel(), c.col_node.ravel())
        a = [c.res_a, c.cell_hi] + ([] if self.acc is None else [self.acc[0]])
        b = [c.res_b, c.cell_lo] + ([] if self.acc is None else [self.acc[1]])
        self.br_a, self.br_b = np.concatenate(a), np.concatenate(b)
        n_br = len(self.br_a)
        self.incidence = sp.csr_matrix((np.r_[np.ones(n_br), -np.ones(n_br)],
                                        (np.r_[self.br_a, self.br_b], np.r_[np.arange(n_br), np.arange(n_br)])),
                                       shape=(n, n_br))  # KCL: current leaving each node
        self.n_wires, self.n_cells = len(c.res_a), len(c.cell_hi)
        fa, fb = index[self.br_a], index[self.br_b]
        branch = np.arange(n_br)
        # stamps (row, col) of d(current of branch k)/d(v_a) and /d(v_b) into KCL rows a (+) and b (−)
        parts = [(fa, fa, 0, 1.0), (fa, fb, 1, 1.0), (fb, fa, 0, -1.0), (fb, fb, 1, -1.0)]
        keep = [(r >= 0) & (col >= 0) for r, col, _, _ in parts]
        self.st_branch = np.concatenate([branch[m] for m in keep])
        self.st_which = np.concatenate([np.full(m.sum(), w) for (_, _, w, _), m in zip(parts, keep)])
        self.st_sign = np.concatenate([np.full(m.sum(), sg) for (_, _, _, sg), m in zip(parts, keep)])
        rows = np.concatenate([r[m] for (r, _, _, _), m in zip(parts, keep)])
        cols = np.concatenate([col[m] for (_, col, _, _), m in zip(parts, keep)])
        width = max(self.m, 1)
        keys, st_pos = np.unique(cols.astype(np.int64) * width + rows, return_inverse=True)
        n_data = len(keys)
        indices = (keys % width).astype(np.int32)
        indptr = np.searchsorted(keys // width, np.arange(self.m + 1)).astype(np.int32)
        # the k blocks side by side on the diagonal
        blocks = np.arange(self.k)
        self.st_pos = (st_pos[None, :] + n_data * blocks[:, None]).ravel()
        self.n_data = n_data * self.k
        self.indices = (indices[None, :] + self.m * blocks[:, None]).ravel()
        self.indptr = np.r_[(indptr[None, :-1] + n_data * blocks[:, None]).ravel(), self.n_data].astype(np.int32)
        self.g_wire = 1.0 / np.array([circ.res_ohm for circ in circuits]).reshape(self.k, self.n_wires)

    def _factorize(self, da: np.ndarray, db: np.ndarray):
        """Sparse LU of the Jacobian (free nodes) for branch derivatives da, db (k, branches)."""
        deriv = np.where(self.st_which == 0, da[:, self.st_branch], db[:, self.st_branch]) * self.st_sign
        data = np.bincount(self.st_pos, weights=deriv.ravel(), minlength=self.n_data)
        size = self.k * self.m
        try:
            return splu(sp.csc_matrix((data, self.indices, self.indptr), shape=(size, size)), permc_spec="NATURAL")
        except RuntimeError as exc:
            raise ConvergenceError("quasi-static pulse: singular nodal matrix (a node has no DC path to a "
                                   "source, e.g. a floating line whose cells are all open)") from exc

    def _first_guess(self, bias: PulseBias, fixed: np.ndarray) -> np.ndarray:
        """Node voltages to start Newton from: each wire node at its line's voltage (the wires
        drop little), each inner node at the column's voltage behind a conducting transistor or a
        selector, at the row's behind a transistor that is off. Floating lines start at 0 V."""
        c = self.circuit
        v = np.zeros(c.n_nodes)
        rows = np.where(bias.floating_rows, 0.0, bias.v_rows)[:, None] * np.ones(c.xb.shape)
        cols = np.where(bias.floating_cols, 0.0, bias.v_cols)[None, :] * np.ones(c.xb.shape)
        v[c.row_node.ravel()] = rows.ravel()
        v[c.col_node.ravel()] = cols.ravel()
        if c.inner_node is not None:
            on = np.ones(c.xb.shape, bool) if bias.v_gates is None else (bias.v_gates > 0)[:, None] & np.ones(
                c.xb.shape, bool)
            v[c.inner_node.ravel()] = np.where(on, cols, rows).ravel()
        v[c.fixed] = fixed
        return v

    def _branches(self, v: np.ndarray, x: np.ndarray):
        """Current of every branch a -> b and its derivatives d/dv_a, d/dv_b, each (k, branches)."""
        k = self.k
        v_dev = (v[:, self.dev[0]] - v[:, self.dev[1]]).reshape(x.shape)
        i_dev = np.where(self.open, 0.0, self.models.current(v_dev, x)).reshape(k, -1)
        g_dev = np.where(self.open, G_FLOOR_S, np.maximum(self.models.slope(v_dev, x), G_FLOOR_S)).reshape(k, -1)
        dv_w = v[:, self.circuit.res_a] - v[:, self.circuit.res_b]
        i = [self.g_wire * dv_w, i_dev]
        da, db = [self.g_wire, g_dev], [-self.g_wire, -g_dev]
        if self.acc is not None:
            i_acc, d_m, d_b = inner_current(self.circuit, v[:, self.acc[0]], v[:, self.acc[1]], self.gates)
            i.append(i_acc)
            da.append(d_m)
            db.append(d_b)
        return np.concatenate(i, axis=1), np.concatenate(da, axis=1), np.concatenate(db, axis=1)

    def solve(self, x: np.ndarray):
        """(device voltages, cell voltages [V], cell currents [A] (k·rows, cols), source power [W] (k,))
        at states x (k·rows, cols)."""
        c, v = self.circuit, self.v.copy()
        previous = np.inf
        for _ in range(NEWTON_MAX_ITER):
            i, da, db = self._branches(v, x)
            if not self.m:
                break
            resid = (self.incidence @ i.T).T[:, self.free]
            worst = np.max(np.abs(resid))
            if self.lu is None or worst > 0.2 * previous:  # the last factorization still contracts fast: keep it
                self.lu = self._factorize(da, db)
            previous = worst
            step = self.lu.solve(-resid.ravel()).reshape(self.k, self.m)
            largest = np.max(np.abs(step), axis=1, keepdims=True)
            step *= np.minimum(1.0, NEWTON_MAX_STEP_V / np.maximum(largest, 1e-300))  # each array's own damping
            v[:, self.free] += step
            if largest.max() < NEWTON_VTOL_V:
                break
        else:
            raise ConvergenceError(f"quasi-static pulse: Newton on the {c.xb.shape[0]}x{c.xb.shape[1]} array did "
                                   f"not converge (last update {largest.max():.3g} V)")
        self.solves += 1
        self.v = v
        i, _, _ = self._branches(v, x)
        cells = slice(self.n_wires, self.n_wires + self.n_cells)
        power = np.sum(i * (v[:, self.br_a] - v[:, self.br_b]), axis=1)  # dissipated in every branch = delivered
        v_dev = v[:, self.dev[0]] - v[:, self.dev[1]]
        v_cell = v[:, c.row_node.ravel()] - v[:, c.col_node.ravel()]
        return v_dev.reshape(x.shape), v_cell.reshape(x.shape), i[:, cells].reshape(x.shape), power

    def rate(self, v_dev: np.ndarray, x: np.ndarray) -> np.ndarray:
        r = self.models.dxdt(v_dev, x)
        r[self.open] = 0.0
        if self.frozen is not None:
            r[self.frozen] = 0.0
        return r


def _gates(bias: PulseBias) -> np.ndarray:
    """(1, rows) gate voltages of a bias (zeros without transistors)."""
    return np.zeros((1, len(bias.v_rows))) if bias.v_gates is None else bias.v_gates[None, :]


def _elimination_order(c, free: np.ndarray) -> np.ndarray:
    """Order of the free nodes for the LU: inner nodes first (each joins only its row and column
    node), then the wire nodes in solver.ordering's nested dissection. On a 32×32 1T1R array this
    gives ~0.6x the fill of COLAMD and a 2.5x faster factorization."""
    order = elimination_order(c, free)
    if c.inner_node is None:
        return order
    inner = np.isin(free[order], c.inner_node.ravel())
    return np.concatenate([order[inner], order[~inner]])


def _topology(c) -> tuple:
    """What two circuits must share to be solved as blocks of one OperatingPoint."""
    parts = (c.node_ids, c.res_a, c.res_b, c.cell_hi, c.cell_lo, c.row_node, c.col_node, c.fixed, c.fixed_kind,
             c.fixed_line, c.tr_row, c.cell_g > 0, np.zeros(0) if c.inner_node is None else c.inner_node)
    return tuple(np.asarray(p).tobytes() for p in parts)


def _midpoint(rate, x: np.ndarray, h: float, r0: np.ndarray) -> np.ndarray:
    """One explicit midpoint step at fixed voltages, stopped at a cell's rest point (where its
    rate changes sign: a bound window or a threshold) rather than stepping across it."""
    r_half = rate(np.clip(x + 0.5 * h * r0, 0.0, 1.0))
    x_new = np.clip(x + h * r_half, 0.0, 1.0)
    r_new = rate(x_new)
    crossed = r_new * r_half < 0
    if crossed.any():  # secant to the rest point between x and x_new
        frac = r_half[crossed] / (r_half[crossed] - r_new[crossed])
        x_new[crossed] = x[crossed] + np.clip(frac, 0.0, 1.0) * (x_new[crossed] - x[crossed])
    return x_new


def _edge(qs: OperatingPoint, x: np.ndarray, v_dev: np.ndarray, edge_s: float, rising: bool) -> np.ndarray:
    """Integrate an edge: device voltages are the flat-top ones scaled by the edge's envelope."""
    h = edge_s / EDGE_POINTS
    for k in range(EDGE_POINTS):
        frac = (k + 0.5) / EDGE_POINTS
        scale = frac if rising else 1.0 - frac
        x = _midpoint(lambda s, sc=scale: qs.rate(sc * v_dev, s), x, h, qs.rate(scale * v_dev, x))
    return x


def apply_pulses(arrays: Sequence[Crossbar], models: CellModels, states: np.ndarray, biases: Sequence[PulseBias],
                 width_s: float, edge_s: float, *, frozen: np.ndarray | None = None,
                 dx_step: float = DX_STEP) -> PulseOutcome:
    """The quasi-static pulse model (module docstring) on k independent arrays of one topology
    (OperatingPoint), each with its own bias and its own time steps, solved together: states
    (k·rows, cols) before the pulse -> PulseOutcome (energy_j: the k arrays' total). frozen: mask
    of cells whose state cannot move (stuck-at faults). Energies count the edges as a linear
    cell would (∫ envelope² dt = edge/3)."""
    qs = OperatingPoint(arrays, models, biases, frozen)
    rows = arrays[0].shape[0]
    x = np.array(states, dtype=float)
    v_dev, v_cell, current, power = qs.solve(x)
    x = _edge(qs, x, v_dev, edge_s, rising=True)
    energy, cell_energy = power.sum() * edge_s / 3, np.abs(v_cell * current) * edge_s / 3
    peak = np.abs(current)
    t = np.zeros(qs.k)
    while np.any(t < width_s * (1 - 1e-12)):
        v_dev, _, _, _ = qs.solve(x)
        r0 = qs.rate(v_dev, x)
        fastest = np.abs(r0).reshape(qs.k, -1).max(axis=1)
        h = np.minimum(width_s - t, np.divide(dx_step, fastest, out=np.full(qs.k, np.inf), where=fastest > 0))
        h[t >= width_s * (1 - 1e-12)] = 0.0  # this array's flat top is done
        h_cells = np.repeat(h, rows)[:, None]
        v_half, v_cell, current, power = qs.solve(np.clip(x + 0.5 * h_cells * r0, 0.0, 1.0))
        x = _midpoint(lambda s, v=v_half: qs.rate(v, s), x, h_cells, r0)
        energy += float(power @ h)
        cell_energy += np.abs(v_cell * current) * h_cells
        peak = np.maximum(peak, np.abs(current))
        t += h
    v_dev, v_cell, current, power = qs.solve(x)
    x = _edge(qs, x, v_dev, edge_s, rising=False)
    energy += power.sum() * edge_s / 3
    cell_energy += np.abs(v_cell * current) * edge_s / 3
    return PulseOutcome(x, float(energy), cell_energy, np.maximum(peak, np.abs(current)), qs.solves)


def apply_pulse(xb: Crossbar, models: CellModels, states: np.ndarray, bias: PulseBias, width_s: float,
                edge_s: float, *, frozen: np.ndarray | None = None, dx_step: float = DX_STEP) -> PulseOutcome:
    """apply_pulses on one array: states (rows, cols) before the pulse -> PulseOutcome."""
    return apply_pulses((xb,), models, states, (bias,), width_s, edge_s, frozen=frozen, dx_step=dx_step)


def apply_pulse_transient(xb: Crossbar, models: CellModels, states: np.ndarray, bias: PulseBias, width_s: float,
                          edge_s: float, *, engine: str = "spice", worker=None, max_step_s: float | None = None
                          ) -> PulseOutcome:
    """The same pulse as a full transient of the array (transient.array_transient): the reference
    for the quasi-static model. Energies are integrated from the waveforms (trapezoid rule)."""
    t, envelope = pulse_times([1.0], width_s, width_s + 3 * edge_s, edge_s)
    gates = None if bias.v_gates is None else np.tile(bias.v_gates, (len(t), 1))
    drive = Drive(t, envelope[:, None] * bias.v_rows, envelope[:, None] * bias.v_cols, gates)
    res = array_transient(xb, models.with_states(states), drive, engine=engine, worker=worker,
                          max_step_s=max_step_s or min(edge_s / 4, width_s / 400),
                          floating_rows=bias.floating_rows, floating_cols=bias.floating_cols)
    cell_power = np.abs(res.cell_voltages * res.cell_currents)
    cell_energy = np.trapezoid(cell_power, res.time_s, axis=0)
    return PulseOutcome(res.state[-1], float(cell_energy.sum()), cell_energy, np.abs(res.cell_currents).max(axis=0))


def rows_isolated(xb: Crossbar, bias: PulseBias) -> bool:
    """True if every transistor of an unselected row is provably off during the pulse: gates at
    0 V and, the array being passive, no node below the lowest driven line, so V_gs < vto when
    that line stays above −vto (by a 0.1 V margin)."""
    if xb.transistor is None or bias.v_gates is None or np.count_nonzero(bias.v_gates) != 1:
        return False
    driven = np.concatenate([bias.v_rows[~bias.floating_rows], bias.v_cols[~bias.floating_cols],
                             [0.0]])
    return float(np.min(np.delete(bias.v_gates, np.flatnonzero(bias.v_gates)))) == 0.0 and \
        -driven.min() < xb.transistor.vto - 0.1


def _line(xb: Crossbar, bias: PulseBias, row: int) -> tuple[Crossbar, PulseBias]:
    """The selected row of a 1T1R array alone, each column's wire from that row down to its sense
    node in series, and its share of the bias."""
    line = Crossbar(conductance=xb.conductance[row:row + 1], r_row=xb.r_row[row:row + 1],
                    r_col=xb.r_col[row:].sum(axis=0)[None, :], r_driver=xb.r_driver[row:row + 1],
                    r_sense=xb.r_sense, transistor=xb.transistor)
    return line, PulseBias(bias.v_rows[row:row + 1], bias.v_cols, bias.floating_rows[row:row + 1],
                           bias.floating_cols, bias.v_gates[row:row + 1])


def apply_row_pulses(xb: Crossbar, models: CellModels, states: np.ndarray, biases: Sequence[PulseBias],
                     width_s: float, edge_s: float, *, frozen: np.ndarray | None = None) -> PulseOutcome:
    """One write pulse per bias, each writing its own row, as if applied one after another.

    A 1T1R pulse whose unselected rows are isolated (rows_isolated) moves only its own row: it
    is solved on that row alone, each column's wire from the row down to its sense node in
    series (the cut-off cells of the other rows carry only ngspice's gmin, 1e-12 S), and such
    pulses of different rows, being independent, are solved together (apply_pulses, rows of
    one wire topology in one batch). Any other pulse runs on the whole array, in the given order
    and before them."""
    x = np.array(states, dtype=float)
    energy, cell_energy, peak, solves = 0.0, np.zeros(xb.shape), np.zeros(xb.shape), 0
    batches: dict[bytes, list[tuple[int, Crossbar, PulseBias]]] = {}
    for bias in biases:
        if not rows_isolated(xb, bias):
            out = apply_pulse(xb, models, x, bias, width_s, edge_s, frozen=frozen)
            x, energy, solves = out.states, energy + out.energy_j, solves + out.dc_solves
            cell_energy += out.cell_energy_j
            peak = np.maximum(peak, out.peak_current_a)
            continue
        row = int(np.flatnonzero(bias.v_gates)[0])
        line, line_bias = _line(xb, bias, row)
        zero_ohm = np.concatenate([line.r_row.ravel(), line.r_col.ravel(), line.r_driver, line.r_sense]) == 0
        batches.setdefault(zero_ohm.tobytes(), []).append((row, line, line_bias))
    for batch in batches.values():
        rows, lines, line_biases = (list(z) for z in zip(*batch))
        if len(set(rows)) < len(rows):
            raise ValueError("apply_row_pulses: one pulse per row")
        out = apply_pulses(lines, models.rows(rows), x[rows], line_biases, width_s, edge_s,
                           frozen=None if frozen is None else frozen[rows])
        x[rows], energy, solves = out.states, energy + out.energy_j, solves + out.dc_solves
        cell_energy[rows] += out.cell_energy_j
        peak[rows] = np.maximum(peak[rows], out.peak_current_a)
    return PulseOutcome(x, energy, cell_energy, peak, solves)
