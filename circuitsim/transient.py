"""Transient simulation of one stateful device or of an array of them, with two engines.

engine="spice" renders the crossbar (circuit.build_circuit + netlist.render, cells as device
subckt instances, sources as PWL) with `.ic` states and `.tran`, and runs it through spice.run_job;
engine="numpy" integrates the twins' dx/dt with scipy's LSODA (implicit BDF once stiff), solving the
array's nodal equations (dense Newton, cells stamped with I and dI/dV at their state, selectors and
access transistors with the solver's own inner-node current) at every evaluation. A single device
is the 1×1 array without wires, so both paths are one. Every drive is piecewise linear (a `Drive`),
gates of 1T1R arrays included, so both engines see exactly the same stimulus.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from circuitsim import __version__
from circuitsim.circuit import Circuit, build_circuit
from circuitsim.design import Crossbar
from circuitsim.devices.memristors import StateDevice
from circuitsim.netlist import number, render
from circuitsim.solver.dc import gate_voltages, inner_current
from circuitsim.spice.worker import SpiceJob, SpiceWorker, run_job
from circuitsim.validate import finite_array, line_mask

ENGINES = ("spice", "numpy")
# ngspice accuracy for state trajectories: tight tolerances, gear integration (MODELS.md recipe)
SPICE_OPTIONS = ".options klu method=gear reltol=1e-7 abstol=1e-15 chgtol=1e-18"
NEWTON_VTOL_V = 1e-12  # the numpy engine's Newton stops when the largest node update is below this [V]
NEWTON_MAX_STEP_V = 0.2  # Newton steps are scaled down to this [V]
NEWTON_MAX_ITER = 100


@dataclass(frozen=True, eq=False)
class Drive:
    """Piecewise-linear line voltages: time_s (n,) strictly increasing from 0 [s];
    v_rows (n, rows) and v_cols (n, cols) [V] at those times (held after the last one);
    v_gates (n, rows) [V]: the gate of each row of a 1T1R array (None: every gate held at the
    transistor's v_gate_on, as in circuitsim.simulate; only 1T1R arrays take gate waveforms)."""

    time_s: np.ndarray
    v_rows: np.ndarray
    v_cols: np.ndarray
    v_gates: np.ndarray | None = None

    def __post_init__(self):
        t = finite_array("Drive.time_s", self.time_s)
        if t.ndim != 1 or len(t) < 2 or t[0] != 0 or np.any(np.diff(t) <= 0):
            raise ValueError("Drive.time_s must be 1-D, start at 0 and strictly increase (>= 2 points)")
        lines = ("v_rows", "v_cols") if self.v_gates is None else ("v_rows", "v_cols", "v_gates")
        for name in lines:
            v = finite_array(f"Drive.{name}", getattr(self, name))
            if v.ndim != 2 or v.shape[0] != len(t):
                raise ValueError(f"Drive.{name} must have shape ({len(t)}, lines), got {v.shape}")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "time_s", t)

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1])


def single_drive(time_s, volts) -> Drive:
    """Drive of one device: volts [V] across it at time_s [s] (the 1×1 array's row; column at 0 V)."""
    t = np.asarray(time_s, dtype=float)
    return Drive(t, np.asarray(volts, dtype=float).reshape(-1, 1), np.zeros((len(t), 1)))


def sine(amplitude_v: float, frequency_hz: float, cycles: float = 1.0, points_per_cycle: int = 400) -> Drive:
    """amplitude·sin(2π·f·t) for `cycles` periods, sampled as a PWL (both engines see the same)."""
    n = round(cycles * points_per_cycle)
    t = np.linspace(0.0, cycles / frequency_hz, n + 1)
    return single_drive(t, amplitude_v * np.sin(2 * np.pi * frequency_hz * t))


def pulse_times(amplitudes_v, width_s: float, period_s: float, edge_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(time_s, volts) of a train of trapezoidal pulses, one per amplitude, starting at 0 V.

    Pulse k rises at k·period + edge, holds its amplitude for width_s, then falls in edge_s.
    """
    amplitudes = finite_array("amplitudes_v", amplitudes_v).reshape(-1)
    if not (edge_s > 0 and width_s > 0 and 3 * edge_s + width_s <= period_s):
        raise ValueError("pulses need edge_s > 0, width_s > 0 and width_s + 3·edge_s <= period_s")
    shape_t = np.array([0.0, edge_s, 2 * edge_s, 2 * edge_s + width_s, 3 * edge_s + width_s])
    shape_v = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    t = np.concatenate([k * period_s + shape_t for k in range(len(amplitudes))] + [[len(amplitudes) * period_s]])
    v = np.concatenate([a * shape_v for a in amplitudes] + [[0.0]])
    keep = np.r_[True, np.diff(t) > 0]
    return t[keep], v[keep]


def pulse_train(amplitudes_v, width_s: float, period_s: float, edge_s: float) -> Drive:
    """A pulse train across one device (see pulse_times)."""
    return single_drive(*pulse_times(amplitudes_v, width_s, period_s, edge_s))


@dataclass(frozen=True, eq=False)
class ArrayTransient:
    """Waveforms of an array: time_s (T,) [s]; cell_voltages (T, rows, cols) [V] row wire minus
    column wire; device_voltages (T, rows, cols) [V] across the stateful device itself;
    cell_currents (T, rows, cols) [A] from row to column; state (T, rows, cols) normalized
    state of each device (open cells: 0 current, state held at its start); initial_state
    (rows, cols) the states at t = 0 (ngspice's first output point is one step later)."""

    engine: str
    time_s: np.ndarray
    cell_voltages: np.ndarray
    device_voltages: np.ndarray
    cell_currents: np.ndarray
    state: np.ndarray
    initial_state: np.ndarray
    provenance: dict


@dataclass(frozen=True, eq=False)
class Transient:
    """Waveforms of one device: time_s [s], voltage_v across it [V], current_a into its
    first port [A], state (normalized, 0..1)."""

    engine: str
    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    state: np.ndarray
    provenance: dict


def _cells(devices, xb: Crossbar) -> list[StateDevice]:
    """One device per cell, row-major, from a single device or a (rows, cols) collection."""
    rows, cols = xb.shape
    if isinstance(devices, StateDevice):
        return [devices] * (rows * cols)
    flat = list(np.asarray(devices, dtype=object).reshape(-1)) if np.shape(devices) == (rows, cols) else None
    if flat is None or not all(isinstance(d, StateDevice) for d in flat):
        raise TypeError(f"cells must be one stateful device or a ({rows}, {cols}) array of them")
    return flat


def _pwl(time_s: np.ndarray, volts: np.ndarray) -> str:
    if np.all(volts == volts[0]):
        return f"DC {number(volts[0])}"
    return "PWL(" + " ".join(f"{number(t)} {number(v)}" for t, v in zip(time_s, volts)) + ")"


def _gate_waveforms(xb: Crossbar, drive: Drive) -> np.ndarray:
    """(n_times, rows) gate voltages [V]: the drive's, or the transistor's v_gate_on on every gate
    (zeros without transistors: no source uses them)."""
    rows = xb.shape[0]
    if drive.v_gates is None:
        return np.full(drive.v_rows.shape, xb.transistor.v_gate_on if xb.transistor is not None else 0.0)
    if xb.transistor is None:
        raise ValueError(f"gate waveforms (Drive.v_gates) apply only to 1T1R arrays, this one is {xb.cell_type}")
    if drive.v_gates.shape[1] != rows:
        raise ValueError(f"the drive has {drive.v_gates.shape[1]} gate lines, the array {rows} rows (one gate per row)")
    return drive.v_gates


def _spice(circuit: Circuit, cells, drive: Drive, volts: np.ndarray, max_step_s: float, worker, timeout_s):
    """volts: (n_times, n_fixed) source voltages at the drive's time points."""
    waveforms = [_pwl(drive.time_s, volts[:, k]) for k in range(volts.shape[1])]
    rows, cols = circuit.xb.shape
    tags = [f"xc{k // cols}_{k % cols}" for k in range(rows * cols)]
    open_cell = circuit.cell_g <= 0
    # .ic (not uic): ngspice solves a consistent operating point with every state held at its
    # x0, so floating lines see the cells' true conductance from the first step
    ics = " ".join(f"v({tag}.x)={number(d.x0)}" for tag, d, o in zip(tags, cells, open_cell) if not o)
    tran = f".ic {ics}\n.tran {number(max_step_s)} {number(drive.duration_s)} 0 {number(max_step_s)}"
    deck = render(circuit, volts[0], tran, waveforms=waveforms, cells=cells).replace(
        ".options klu", SPICE_OPTIONS, 1)
    sha = hashlib.sha256(deck.encode()).hexdigest()
    out = run_job(SpiceJob(deck, label=f"{rows}x{cols} transient (netlist sha256 {sha[:12]})"), worker, timeout_s)
    vec = out.vectors[0]
    t = vec["time"]
    names = [n.lower() for n in circuit.node_names]

    def node(idx):
        return np.stack([vec[names[i]] for i in idx], axis=1)

    v_hi, v_lo = node(circuit.cell_hi), node(circuit.cell_lo)
    state = np.stack([np.full(len(t), cells[k].x0) if open_cell[k] else vec[f"{tag}.x"]
                      for k, tag in enumerate(tags)], axis=1)
    current = np.stack([np.zeros(len(t)) if open_cell[k] else vec[f"v.{tag}.vi#branch"]
                        for k, tag in enumerate(tags)], axis=1)
    cell_v = node(circuit.row_node.ravel()) - node(circuit.col_node.ravel())
    return t, cell_v, v_hi - v_lo, current, state, {"ngspice_version": out.ngspice_version, "netlist_sha256": sha}


class _NodalCells:
    """The numpy engine's view of the array: node voltages and cell currents for given states.

    Arrays in transients are small, so the nodal equations are dense: wires stamp a constant
    Laplacian, cells and selectors stamp (i, dI/dV) and damped Newton solves KCL at the free
    nodes, warm-started from the previous time point.
    """

    def __init__(self, circuit: Circuit, cells: list[StateDevice], drive: Drive, sources: np.ndarray):
        self.circuit, self.drive = circuit, drive
        self.has_cell = circuit.cell_g > 0
        groups: dict[StateDevice, list[int]] = {}  # devices differing only in x0 share one evaluation
        for k, device in enumerate(cells):
            groups.setdefault(device.with_state(0.5), []).append(k)
        self.groups = {d: np.array(ks) for d, ks in groups.items()}
        self.sources = sources
        n = circuit.n_nodes
        self.free = np.setdiff1d(np.arange(n), circuit.fixed)
        self.wires = np.zeros((n, n))
        _stamp(self.wires, None, circuit.res_a, circuit.res_b, 1.0 / circuit.res_ohm)
        self.v_last = np.zeros(n)

    def cell_eval(self, method: str, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for device, ks in self.groups.items():
            out[ks] = getattr(device, method)(v[ks], x[ks])
        return out * self.has_cell

    def solve(self, t: float, x: np.ndarray) -> np.ndarray:
        """Node voltages at time t with cell states x."""
        c, free = self.circuit, self.free
        v = self.v_last.copy()
        v[c.fixed] = [np.interp(t, self.drive.time_s, col) for col in self.sources.T]
        if c.inner_node is not None:  # selector or access transistor: inner node -> column wire
            inner, col = c.inner_node.ravel(), c.col_node.ravel()
            gates = gate_voltages(c, v[None, c.fixed])  # fixed during the Newton solve
            gates = None if gates is None else gates[0]
        for _ in range(NEWTON_MAX_ITER):
            if not len(free):
                break
            jac, resid = self.wires.copy(), self.wires @ v
            v_dev = v[c.cell_hi] - v[c.cell_lo]
            _stamp(jac, resid, c.cell_hi, c.cell_lo, self.cell_eval("slope", v_dev, x),
                   self.cell_eval("current", v_dev, x))
            if c.inner_node is not None:
                i_in, di_dinner, di_dcol = inner_current(c, v[inner], v[col], gates)
                _stamp(jac, resid, inner, col, di_dinner, i_in, di_dcol)
            try:
                step = np.linalg.solve(jac[np.ix_(free, free)], -resid[free])
            except np.linalg.LinAlgError:
                raise RuntimeError(f"transient: singular nodal matrix at t = {t:g} s (a node lost its DC path, "
                                   "e.g. a floating line whose cells are all open)") from None
            largest = np.max(np.abs(step))
            if largest > NEWTON_MAX_STEP_V:
                step *= NEWTON_MAX_STEP_V / largest
            v[free] += step
            if largest < NEWTON_VTOL_V:
                break
        else:
            raise RuntimeError(f"transient: Newton did not converge at t = {t:g} s")
        self.v_last = v
        return v

    def rate(self, t: float, x: np.ndarray) -> np.ndarray:
        v = self.solve(t, x)
        return self.cell_eval("dxdt", v[self.circuit.cell_hi] - v[self.circuit.cell_lo], x)


def _stamp(jac: np.ndarray, resid: np.ndarray | None, a: np.ndarray, b: np.ndarray, di_da: np.ndarray,
           i: np.ndarray | None = None, di_db: np.ndarray | None = None) -> None:
    """Add branches a -> b carrying current i [A] to the nodal system, with the current's
    derivatives di_da, di_db [S] with respect to v_a and v_b (a two-terminal element: di_db = −di_da;
    a transistor with a fixed gate: both its own)."""
    di_db = -di_da if di_db is None else di_db
    np.add.at(jac, (a, a), di_da)
    np.add.at(jac, (a, b), di_db)
    np.add.at(jac, (b, a), -di_da)
    np.add.at(jac, (b, b), -di_db)
    if resid is not None:
        np.add.at(resid, a, i)
        np.add.at(resid, b, -i)


def _numpy(circuit: Circuit, cells, drive: Drive, sources: np.ndarray, t_eval):
    nodal = _NodalCells(circuit, cells, drive, sources)
    max_step_s = np.diff(drive.time_s).min()  # never step over a feature of the drive; LSODA controls the error
    x0 = np.array([d.x0 for d in cells])
    t_eval = np.linspace(0, drive.duration_s, 2001) if t_eval is None else np.asarray(t_eval, dtype=float)
    t_eval = np.clip(t_eval, 0.0, drive.duration_s)  # e.g. ngspice's last time point, a rounding error past the end
    sol = solve_ivp(nodal.rate, (0.0, drive.duration_s), x0, method="LSODA", t_eval=t_eval,
                    max_step=max_step_s, rtol=1e-7, atol=1e-9)
    if not sol.success:
        raise RuntimeError(f"transient: the numpy integration failed: {sol.message}")
    c = circuit
    v = np.array([nodal.solve(t, x) for t, x in zip(sol.t, sol.y.T)])
    v_dev = v[:, c.cell_hi] - v[:, c.cell_lo]
    current = np.stack([nodal.cell_eval("current", vd, x) for vd, x in zip(v_dev, sol.y.T)])
    cell_v = v[:, c.row_node.ravel()] - v[:, c.col_node.ravel()]
    return sol.t, cell_v, v_dev, current, sol.y.T, {"rhs_evaluations": int(sol.nfev)}


def array_transient(xb: Crossbar, cells, drive: Drive, *, engine: str = "spice", max_step_s: float | None = None,
                    floating_rows=None, floating_cols=None, t_eval=None, worker: SpiceWorker | None = None,
                    timeout_s: float | None = None) -> ArrayTransient:
    """Transient of a crossbar whose cells are stateful devices.

    xb gives the wiring and the selector or access transistor; its conductance only marks open
    cells (0). cells: one device (circuitsim.devices.memristors) for every cell, or a (rows, cols)
    array of them (each starts at its own x0). drive: PWL line voltages, and gate voltages for
    1T1R arrays (default: every gate at the transistor's v_gate_on). max_step_s: ngspice's
    largest time step [s] (default duration/2000; the numpy engine steps at most one drive
    segment and controls its own error); t_eval: output times of the numpy engine (default
    2001 uniform points; spice returns its own time points).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown transient engine {engine!r}; choose one of {ENGINES}")
    if not isinstance(xb, Crossbar) or not isinstance(drive, Drive):
        raise TypeError("array_transient takes a Crossbar and a Drive")
    rows, cols = xb.shape
    if drive.v_rows.shape[1] != rows or drive.v_cols.shape[1] != cols:
        raise ValueError(f"the drive has {drive.v_rows.shape[1]} rows and {drive.v_cols.shape[1]} columns, "
                         f"the array {rows}x{cols}")
    gates = _gate_waveforms(xb, drive)
    device_list = _cells(cells, xb)
    step = drive.duration_s / 2000 if max_step_s is None else float(max_step_s)
    if not 0 < step <= drive.duration_s:
        raise ValueError(f"max_step_s must be in (0, duration], got {step:g}")
    circuit = build_circuit(xb, line_mask("floating_rows", floating_rows, rows),
                            line_mask("floating_cols", floating_cols, cols))
    sources = circuit.fixed_voltages(drive.v_rows, drive.v_cols, gates)
    start = time.perf_counter()
    if engine == "spice":
        t, cell_v, dev_v, current, state, extra = _spice(circuit, device_list, drive, sources, step, worker,
                                                         timeout_s)
    else:
        t, cell_v, dev_v, current, state, extra = _numpy(circuit, device_list, drive, sources, t_eval)
    grid = (len(t), rows, cols)
    provenance = {"engine": engine, "circuitsim_version": __version__, "wall_time_s": time.perf_counter() - start,
                  "max_step_s": step, "cells": [{"type": type(d).__name__, **d.spice_params()} for d in device_list],
                  **extra}
    return ArrayTransient(engine, t, cell_v.reshape(grid), dev_v.reshape(grid), current.reshape(grid),
                          state.reshape(grid), np.array([d.x0 for d in device_list]).reshape(rows, cols), provenance)


def transient(device: StateDevice, drive: Drive, *, engine: str = "spice", max_step_s: float | None = None,
              t_eval=None, worker: SpiceWorker | None = None, timeout_s: float | None = None) -> Transient:
    """Transient of one device driven directly by drive (see single_drive, sine, pulse_train)."""
    if not isinstance(device, StateDevice):
        raise TypeError(f"transient takes a stateful device, got {type(device).__name__}")
    res = array_transient(Crossbar(conductance=[[1.0]]), device, drive, engine=engine, max_step_s=max_step_s,
                          t_eval=t_eval, worker=worker, timeout_s=timeout_s)
    return Transient(engine, res.time_s, res.device_voltages[:, 0, 0], res.cell_currents[:, 0, 0],
                     res.state[:, 0, 0], res.provenance)
