"""Transient simulation of an array (wires, capacitances, linear or stateful cells) or of one
stateful device, with two engines.

engine="spice" renders the crossbar (circuit.cached_circuit + netlist.render, cells as resistors or
device subckt instances, capacitors, sources as PWL) with `.ic` states and `.tran`, and runs it
through spice.run_job; engine="numpy" integrates the same nodal equations with the sparse implicit
integrator of solver/transient.py (variable-step BDF2, chord Newton, one factorization reused
while the step allows). A single stateful device without capacitance is a pure ODE in its state,
which LSODA integrates to the tight tolerances device characterization needs. Every drive is
piecewise linear (a `Drive`), gates of 1T1R arrays included, so both engines see exactly the
same stimulus.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from circuitsim import __version__
from circuitsim.circuit import Circuit, cached_circuit
from circuitsim.design import Crossbar
from circuitsim.devices.memristors import StateDevice
from circuitsim.netlist import number, render, source_names
from circuitsim.solver.cells import inner_current
from circuitsim.solver.dc import gate_voltages
from circuitsim.solver.transient import StepOptions, Waves, delivered, integrate, node_currents, stored_energy
from circuitsim.spice.worker import SpiceJob, SpiceWorker, run_job
from circuitsim.validate import finite_array, line_mask, positive_scalar

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
    """Waveforms of an array at the output times time_s (T,) [s].

    column_currents (T, cols) [A] into the sense nodes and row_currents (T, rows) [A] out of the
    drivers, as in circuitsim.Result (0 on a floating line); column_charge_c (T, cols) [C] into the
    sense nodes since t = 0 (what a charge-integrating readout sees); source_energy_j (T,) [J] the energy
    the sources delivered since t = 0; stored_energy_j (T,) [J] in the capacitors (None where the
    engine kept no node voltage).
    With detail (the default), per cell: cell_voltages (T, rows, cols) [V] row wire minus column
    wire; device_voltages (T, rows, cols) [V] across the device itself; cell_currents (T, rows,
    cols) [A] from row to column; for stateful cells also state (T, rows, cols), the normalized
    state of each device (open cells: 0 current, state held at its start), and initial_state
    (rows, cols) the states at t = 0; node_voltages (T, n_nodes) [V] in the order of
    circuit.node_names (NaN where a node has no DC path). Without detail, or for linear cells
    (no state), those are None. circuit: the flat circuit that was integrated.
    """

    engine: str
    time_s: np.ndarray
    column_currents: np.ndarray
    row_currents: np.ndarray
    column_charge_c: np.ndarray
    source_energy_j: np.ndarray
    stored_energy_j: np.ndarray | None
    cell_voltages: np.ndarray | None
    device_voltages: np.ndarray | None
    cell_currents: np.ndarray | None
    state: np.ndarray | None
    initial_state: np.ndarray | None
    node_voltages: np.ndarray | None
    circuit: Circuit
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


def _deck(circuit: Circuit, cells, drive: Drive, volts: np.ndarray, max_step_s: float,
          detail: bool) -> tuple[str, list[str]]:
    """The .tran deck and the vectors to read back. volts: (n_times, n_fixed) source voltages at the
    drive's time points. Without detail only the sources' currents are saved (.save), which keeps
    large arrays' runs lean."""
    waveforms = [_pwl(drive.time_s, volts[:, k]) for k in range(volts.shape[1])]
    rows, cols = circuit.xb.shape
    tags = [f"xc{k // cols}_{k % cols}" for k in range(rows * cols)]
    present = np.flatnonzero(circuit.cell_g > 0)
    sources = source_names(circuit)
    lines = []
    if cells is not None:
        # .ic (not uic): ngspice solves a consistent operating point with every state held at its
        # x0, so floating lines see the cells' true conductance from the first step
        lines.append(".ic " + " ".join(f"v({tags[k]}.x)={number(cells[k].x0)}" for k in present))
    probes = ["time", *(f"{s.lower()}#branch" for s in sources)]
    if detail:
        probes += [circuit.node_names[k].lower() for k in np.flatnonzero(~circuit.dead)]
        if cells is not None:
            probes += [f"{tags[k]}.x" for k in present] + [f"v.{tags[k]}.vi#branch" for k in present]
    else:
        lines.append(".save " + " ".join(f"i({s})" for s in sources))
    lines.append(f".tran {number(max_step_s)} {number(drive.duration_s)} 0 {number(max_step_s)}")
    deck = render(circuit, volts[0], "\n".join(lines), waveforms=waveforms, cells=cells).replace(
        ".options klu", SPICE_OPTIONS, 1)
    return deck, probes


def _spice(circuit: Circuit, cells, drive: Drive, volts: np.ndarray, max_step_s: float, detail: bool, worker,
           timeout_s) -> Waves:
    deck, probes = _deck(circuit, cells, drive, volts, max_step_s, detail)
    rows, cols = circuit.xb.shape
    sources = source_names(circuit)
    present = np.flatnonzero(circuit.cell_g > 0)
    alive = np.flatnonzero(~circuit.dead)
    sha = hashlib.sha256(deck.encode()).hexdigest()
    out = run_job(SpiceJob(deck, label=f"{rows}x{cols} transient (netlist sha256 {sha[:12]})", probes=tuple(probes)),
                  worker, timeout_s)
    values = out.values[0]
    t = values[0]
    # ngspice's branch current flows into the source's + node; the source delivers the opposite
    currents = -values[1:1 + len(sources)].T
    charge, energy = delivered(t, np.stack([np.interp(t, drive.time_s, col) for col in volts.T], axis=1), currents)
    node_v = cell_i = state = stored = None
    if detail:
        at = 1 + len(sources)
        node_v = np.full((len(t), circuit.n_nodes), np.nan)
        node_v[:, alive] = values[at:at + len(alive)].T
        at += len(alive)
        cell_i = np.zeros((len(t), rows * cols))
        if cells is None:
            cell_i[:, present] = (node_v[:, circuit.cell_hi[present]] - node_v[:, circuit.cell_lo[present]]) \
                * circuit.cell_g[present]
        else:
            state = np.tile([d.x0 for d in cells], (len(t), 1))
            state[:, present] = values[at:at + len(present)].T
            cell_i[:, present] = values[at + len(present):at + 2 * len(present)].T
        stored = stored_energy(circuit, node_v)
    return Waves(t, currents, charge, energy, node_v, cell_i, state, stored,
                 {"ngspice_version": out.ngspice_version, "netlist_sha256": sha})


class _NodalCells:
    """A single device's node voltages and current for a given state (the LSODA path of
    _single_device): a few nodes, so the nodal equations are dense; damped Newton solves KCL at
    the free nodes, warm-started from the previous time point.
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


def _single_device(circuit: Circuit, cells, drive: Drive, sources: np.ndarray, t_eval) -> Waves:
    """One stateful device without capacitance: a pure ODE in its state, integrated by LSODA (up to
    fifth order), which resolves abrupt switching (Stanford-PKU) to the model-agreement tests'
    sub-picosecond shifts; the second-order array integrator would need far smaller steps there."""
    nodal = _NodalCells(circuit, cells, drive, sources)
    max_step_s = np.diff(drive.time_s).min()  # never step over a feature of the drive; LSODA controls the error
    x0 = np.array([d.x0 for d in cells])
    sol = solve_ivp(nodal.rate, (0.0, drive.duration_s), x0, method="LSODA", t_eval=t_eval,
                    max_step=max_step_s, rtol=1e-7, atol=1e-9)
    if not sol.success:
        raise RuntimeError(f"transient: the numpy integration failed: {sol.message}")
    c = circuit
    v = np.array([nodal.solve(t, x) for t, x in zip(sol.t, sol.y.T)])
    v_dev = v[:, c.cell_hi] - v[:, c.cell_lo]
    current = np.stack([nodal.cell_eval("current", vd, x) for vd, x in zip(v_dev, sol.y.T)])
    gates = gate_voltages(c, v[:, c.fixed])
    currents = node_currents(c, v, current, gates)[:, c.fixed]
    return Waves(sol.t, currents, *delivered(sol.t, v[:, c.fixed], currents), v, current, sol.y.T,
                 np.zeros(len(sol.t)),
                 {"rhs_evaluations": int(sol.nfev)})


def output_times(t_eval, duration_s: float) -> np.ndarray:
    """Checked output times [s]: strictly increasing, within [0, duration_s] (a rounding error past
    the end, e.g. ngspice's last time point, is clipped); None gives 2001 uniform points."""
    if t_eval is None:
        return np.linspace(0.0, duration_s, 2001)
    t = finite_array("t_eval", t_eval)
    if t.ndim != 1 or not len(t) or np.any(np.diff(t) <= 0):
        raise ValueError("t_eval must be a non-empty 1-D array of strictly increasing times")
    if t[0] < 0 or t[-1] > duration_s * (1 + 1e-9):
        raise ValueError(f"t_eval spans [{t[0]:g}, {t[-1]:g}] s, beyond the drive's [0, {duration_s:g}] s: "
                         "the drive must cover the simulated time")
    return np.clip(t, 0.0, duration_s)


def _result(engine: str, circuit: Circuit, waves: Waves, cells, detail: bool, provenance: dict) -> ArrayTransient:
    """The ArrayTransient of an engine's waves (column and row currents as in circuitsim.Result)."""
    rows, cols = circuit.xb.shape
    t = waves.time_s
    kind, line = circuit.fixed_kind, circuit.fixed_line
    col_i, row_i, col_q = np.zeros((len(t), cols)), np.zeros((len(t), rows)), np.zeros((len(t), cols))
    row_i[:, line[kind == 0]] = waves.source_currents[:, kind == 0]
    col_i[:, line[kind == 1]] = -waves.source_currents[:, kind == 1]
    col_q[:, line[kind == 1]] = -waves.source_charge_c[:, kind == 1]
    per_cell = [None] * 4
    if detail:
        v = waves.node_volts
        grid = (len(t), rows, cols)
        per_cell = [(v[:, circuit.row_node.ravel()] - v[:, circuit.col_node.ravel()]).reshape(grid),
                    (v[:, circuit.cell_hi] - v[:, circuit.cell_lo]).reshape(grid),
                    waves.cell_currents.reshape(grid), None if waves.state is None else waves.state.reshape(grid)]
    initial = None if cells is None else np.array([d.x0 for d in cells]).reshape(rows, cols)
    return ArrayTransient(engine, t, col_i, row_i, col_q, waves.source_energy_j, waves.stored_energy_j, *per_cell,
                          initial, waves.node_volts if detail else None, circuit, {**provenance, **waves.extra})


def _prepare(xb: Crossbar, cells, drive: Drive, max_step_s, floating_rows, floating_cols):
    """Checked inputs of a transient: (circuit, devices or None, source voltages, max step)."""
    if not isinstance(xb, Crossbar) or not isinstance(drive, Drive):
        raise TypeError("a transient takes a Crossbar and a Drive")
    rows, cols = xb.shape
    if drive.v_rows.shape[1] != rows or drive.v_cols.shape[1] != cols:
        raise ValueError(f"the drive has {drive.v_rows.shape[1]} rows and {drive.v_cols.shape[1]} columns, "
                         f"the array {rows}x{cols}")
    gates = _gate_waveforms(xb, drive)
    device_list = None if cells is None else _cells(cells, xb)
    step = drive.duration_s / 2000 if max_step_s is None else float(max_step_s)
    if not 0 < step <= drive.duration_s:
        raise ValueError(f"max_step_s must be in (0, duration], got {step:g}")
    circuit = cached_circuit(xb, line_mask("floating_rows", floating_rows, rows),
                             line_mask("floating_cols", floating_cols, cols))
    return circuit, device_list, circuit.fixed_voltages(drive.v_rows, drive.v_cols, gates), step


def transient_deck(xb: Crossbar, cells, drive: Drive, *, max_step_s: float | None = None, floating_rows=None,
                   floating_cols=None, detail: bool = True) -> str:
    """The .tran deck that array_transient(..., engine="spice") runs (same arguments)."""
    circuit, device_list, sources, step = _prepare(xb, cells, drive, max_step_s, floating_rows, floating_cols)
    return _deck(circuit, device_list, drive, sources, step, detail)[0]


def array_transient(xb: Crossbar, cells, drive: Drive, *, engine: str = "spice", max_step_s: float | None = None,
                    floating_rows=None, floating_cols=None, t_eval=None, detail: bool = True, rtol: float = 1e-5,
                    worker: SpiceWorker | None = None, timeout_s: float | None = None) -> ArrayTransient:
    """Transient of a crossbar, its wires and capacitances included.

    cells: None for the linear cells of xb.conductance (with its selector or access transistor);
    or stateful devices (circuitsim.devices.memristors), one for every cell or a (rows, cols)
    array of them (each starts at its own x0), xb's conductance then only marks open cells (0).
    drive: PWL line voltages, and gate voltages for 1T1R arrays (default: every gate at the
    transistor's v_gate_on); the circuit starts at its DC operating point at t = 0.
    max_step_s: ngspice's largest time step [s] (default duration/2000; the numpy engine steps at
    most one drive segment and controls its own error); t_eval: output times of the numpy engine
    (default 2001 uniform points; spice returns its own time points). detail=False keeps only
    the line currents and energies (no per-cell waveform): what large arrays need. rtol: the
    numpy engine's local error per step, relative to full scale (solver.transient.StepOptions).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown transient engine {engine!r}; choose one of {ENGINES}")
    circuit, device_list, sources, step = _prepare(xb, cells, drive, max_step_s, floating_rows, floating_cols)
    t_eval = output_times(t_eval, drive.duration_s)
    if not 0 < positive_scalar("rtol", rtol) < 1:
        raise ValueError(f"rtol is a fraction of full scale in (0, 1), got {rtol!r}")
    start = time.perf_counter()
    if engine == "spice":
        waves = _spice(circuit, device_list, drive, sources, step, detail, worker, timeout_s)
    elif device_list is not None and xb.shape == (1, 1) and not xb.has_capacitance:
        waves = _single_device(circuit, device_list, drive, sources, t_eval)
    else:
        waves = integrate(circuit, device_list, drive.time_s, sources, t_eval, detail=detail,
                          opts=StepOptions(rtol=rtol))
    provenance = {"engine": engine, "circuitsim_version": __version__, "wall_time_s": time.perf_counter() - start,
                  "max_step_s": step,
                  "cells": None if device_list is None else [{"type": type(d).__name__, **d.spice_params()}
                                                             for d in device_list]}
    return _result(engine, circuit, waves, device_list, detail, provenance)


ONE_CELL = Crossbar(conductance=[[1.0]])  # one object, so repeated transient() calls reuse its cached circuit


def transient(device: StateDevice, drive: Drive, *, engine: str = "spice", max_step_s: float | None = None,
              t_eval=None, worker: SpiceWorker | None = None, timeout_s: float | None = None) -> Transient:
    """Transient of one device driven directly by drive (see single_drive, sine, pulse_train)."""
    if not isinstance(device, StateDevice):
        raise TypeError(f"transient takes a stateful device, got {type(device).__name__}")
    res = array_transient(ONE_CELL, device, drive, engine=engine, max_step_s=max_step_s,
                          t_eval=t_eval, worker=worker, timeout_s=timeout_s)
    return Transient(engine, res.time_s, res.device_voltages[:, 0, 0], res.cell_currents[:, 0, 0],
                     res.state[:, 0, 0], res.provenance)
