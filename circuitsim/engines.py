"""The public entry points: simulate() with its engines, and netlist()."""
from __future__ import annotations

import hashlib
import sys
import time
from contextlib import contextmanager

import numpy as np

from circuitsim import __version__
from circuitsim.circuit import Drive, make_drive
from circuitsim.design import Crossbar
from circuitsim.netlist import number, render, source_names, standalone
from circuitsim.results import Result, extract
from circuitsim.solver.dc import is_linear, operating_point, source_currents
from circuitsim.spice.worker import SpiceError, SpiceJob, SpiceWorker, run_job
from circuitsim.validate import positive_seconds


def netlist(xb: Crossbar, v_rows, v_cols=None, *, v_gates=None, floating_rows=None, floating_cols=None,
            self_contained: bool = False) -> str:
    """The SPICE deck (.op) that engine="spice" runs for one input vector v_rows (rows,).

    self_contained=True: a deck for the ngspice program instead, with the models inlined (no
    .include, so it runs from any folder) and the column currents printed by `ngspice -b`.
    """
    drive = make_drive(xb, v_rows, v_cols, v_gates, floating_rows, floating_cols)
    if not drive.single:
        raise ValueError("netlist() takes one input vector of shape (rows,)")
    if self_contained:
        return standalone(drive.circuit, drive.fixed_volts[0])
    return render(drive.circuit, drive.fixed_volts[0])


def check_passive(node_volts: np.ndarray, fixed_volts: np.ndarray, label: str) -> None:
    """Refuse a node voltage outside the sources' range (ground included): every cell and wire is
    passive, so no such solution exists. ngspice can still report one, e.g. 39's transient-op
    fallback settling where a current flows through gmin alone."""
    low = np.minimum(fixed_volts.min(axis=1, initial=0.0), 0.0)[:, None]
    high = np.maximum(fixed_volts.max(axis=1, initial=0.0), 0.0)[:, None]
    slack = 1e-3 * (high - low) + 1e-6  # ngspice's reltol and vntol
    bad = (node_volts < low - slack) | (node_volts > high + slack)
    if bad.any():
        vector, node = np.argwhere(bad)[0]
        raise SpiceError(f"{label}: ngspice returned {node_volts[vector, node]:.4g} V at a node for input vector "
                         f"{vector}, outside the sources' range [{low[vector, 0]:.4g}, {high[vector, 0]:.4g}] V: "
                         "not a solution of a passive circuit")


def _spice(drive: Drive, worker: SpiceWorker | None, timeout_s: float | None, progress: bool | None) -> tuple:
    circuit, volts = drive.circuit, drive.fixed_volts
    deck = render(circuit, volts[0])
    sources = source_names(circuit)
    runs = [()] + [tuple(f"alter {s.lower()} dc={number(v)}" for s, v, old in zip(sources, now, prev) if v != old)
                   for prev, now in zip(volts[:-1], volts[1:])]
    rows, cols = circuit.xb.shape
    sha256 = _sha256(deck)
    label = f"{rows}x{cols} {circuit.xb.cell_type} crossbar (netlist sha256 {sha256[:12]})"
    # nodes with no DC path to a source are not in the deck: undefined (NaN)
    alive = np.flatnonzero(~circuit.dead)
    names = circuit.node_names if len(alive) == len(circuit.dead) else [circuit.node_names[k] for k in alive]
    # ngspice's vector names: lower case, branch currents as <source>#branch (lowered in one go)
    probes = tuple("\n".join([*names, *(f"{s}#branch" for s in sources)]).lower().split("\n"))
    with _progress_bar(len(runs), progress) as bar:
        out = run_job(SpiceJob(deck, tuple(runs), label, probes), worker, timeout_s,
                      None if bar is None else lambda done: bar.update(done - bar.n))
    values = out.values[:, :, 0]
    v = np.full((len(values), len(circuit.dead)), np.nan)
    v[:, alive] = values[:, :len(alive)]
    check_passive(v, volts, label)
    # ngspice's branch current flows into the + node; a source delivers the opposite
    delivered = -values[:, len(alive):]
    return v, delivered, {"ngspice_version": out.ngspice_version, "netlist_sha256": sha256,
                          "convergence_aid": out.aid}


PROGRESS_MIN_RUNS = 50  # smaller batches never show a bar


@contextmanager
def _progress_bar(runs: int, progress: bool | None):
    """A tqdm bar over a batch's input vectors when asked (progress=True), or by default when the
    batch is long and stderr is a terminal; it appears only after 1 s, so short jobs stay quiet."""
    show = progress if progress is not None else runs >= PROGRESS_MIN_RUNS and sys.stderr.isatty()
    if not show:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=runs, desc="ngspice", unit="vector", delay=0.0 if progress else 1.0) as bar:
        yield bar
        bar.update(runs - bar.n)


EAGER_NODE_VALUES = 1 << 26  # a nonlinear batch keeps every node of every vector up to this many (0.5 GB)


def _numpy(drive: Drive) -> tuple:
    """Node voltages, source currents, provenance extras, cell currents; for a batch on a linear
    array, or a nonlinear batch past EAGER_NODE_VALUES, only the source currents, the rest on
    demand (lazy: a linear array's from its factorization, a nonlinear one's solved again)."""
    circuit, volts = drive.circuit, drive.fixed_volts
    if len(volts) > 1 and (is_linear(circuit) or len(volts) * circuit.n_nodes > EAGER_NODE_VALUES):
        return None, source_currents(circuit, volts), {"node_results": "on demand"}, None

    solution = _numpy_solution(drive)
    return solution.node_volts, solution.source_currents, {}, solution.cell_currents


def _numpy_details(drive: Drive) -> tuple[np.ndarray, np.ndarray]:
    """(node voltages, cell currents) of every vector of a drive, for a Result's on-demand arrays."""
    solution = _numpy_solution(drive)
    return solution.node_volts, solution.cell_currents


def _numpy_solution(drive: Drive):
    """The operating point of every vector of a drive, nodes with no DC path to a source undefined (NaN)."""
    solution = operating_point(drive.circuit, drive.fixed_volts)
    solution.node_volts[:, drive.circuit.dead] = np.nan
    return solution


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


ENGINES = ("spice", "numpy", "surrogate")


def simulate(xb: Crossbar, v_rows, v_cols=None, *, engine: str = "spice", v_gates=None, floating_rows=None,
             floating_cols=None, worker: SpiceWorker | None = None, timeout_s: float | None = None,
             calibration=None, progress: bool | None = None, fallback: bool = True) -> Result:
    """Solve the crossbar for row voltages v_rows [V], (rows,) or (batch, rows).

    v_cols: sense-node voltages [V] (default 0); v_gates: 1T1R gate voltages per row [V]
    (default the transistor's v_gate_on); floating_rows / floating_cols: boolean masks of
    lines left unconnected. engine: "spice" (ngspice in a worker process), "numpy" (exact
    nodal solver) or "surrogate" (calibrated fast model, needs `calibration`).
    timeout_s: the spice engine's time limit [s], a positive finite number (None: the worker's
    own limit, 600 s for the shared worker). progress: a progress bar for long spice batches
    (None: only when stderr is a terminal).
    fallback (surrogate only): where the surrogate cannot vouch for its answer (outside its
    calibrated range, error estimate above its bound), warn and solve with "numpy" (True) or
    raise errors.SurrogateAccuracyError (False).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {ENGINES}")
    timeout_s = positive_seconds("timeout_s", timeout_s, allow_none=True)
    drive = make_drive(xb, v_rows, v_cols, v_gates, floating_rows, floating_cols)
    start = time.perf_counter()
    cell_currents = None  # the spice engine's come from its node voltages
    if engine == "spice":
        v, delivered, extra = _spice(drive, worker, timeout_s, progress)
    elif engine == "numpy":
        v, delivered, extra, cell_currents = _numpy(drive)
    else:
        from circuitsim.surrogate.model import simulate_surrogate

        def exact() -> Result:
            return simulate(xb, v_rows, v_cols, engine="numpy", v_gates=v_gates, floating_rows=floating_rows,
                            floating_cols=floating_cols)

        return simulate_surrogate(xb, drive, calibration, exact=exact if fallback else None)
    provenance = {"engine": engine, "circuitsim_version": __version__,
                  "wall_time_s": time.perf_counter() - start, **extra}
    later = None if v is not None else lambda: _numpy_details(drive)
    return extract(drive.circuit, engine, v, delivered, drive.fixed_volts, drive.single, provenance, cell_currents,
                   later)
