"""Write-verify programming of a whole array: ISPP, read-verify, tolerance band, SET compliance.

Every cell starts from its device's x0 (or the states given). A cell is done when its read
conductance, the device's chord conductance I(v_read, x)/v_read (an ideal read-verify of the
cell's own device), lies in the band target·(1 ± tolerance). Otherwise it gets incremental step
pulses (ISPP): the first SET (or RESET) pulse at v_set_start (v_reset_start), each next one
v_set_step (v_reset_step) higher up to v_set_max (v_reset_max), a read-verify after each.
A pulse that overshoots the band switches the cell to the other polarity, restarting its
amplitude (RESET/SET alternation). A cell still outside the band after max_pulses has failed.

order="row": the unfinished cells of one row are written together, one pulse per polarity
(write_bias gives each selected column its own amplitude); "cell": one cell at a time. The
unselected lines are biased by `scheme` (V/2, V/3 or floating). 1T1R arrays: the selected
row's gate is at v_gate_set during SET pulses (its saturation current is the SET compliance)
and at v_gate_reset during RESET pulses; the other gates are at 0 V.

pulse_engine="quasistatic" (default, pulses.apply_pulse) runs the bulk (1T1R: on the selected
row alone when the other rows' transistors are provably off, pulses.apply_row_pulses); "spice" or
"numpy" run every pulse as a full array transient (pulses.apply_pulse_transient), for checking a
small array against the quasi-static model.

Concurrent rows (1T1R, order "row", quasi-static; concurrent_rows=False turns it off): a pulse
that keeps the other rows' transistors off moves only its own row, so the rows' write-verify
loops are independent and are simulated side by side, their pulses solved together
(pulses.apply_row_pulses); pulses, energy and programming time are still counted as one row
after another. A pulse that turns other rows' transistors on (a RESET below −vto under V/2)
runs on the whole array, before the isolated ones of the same round: its disturb then reaches
rows in the middle of their own loop rather than before or after it (measured on the digits
tiles: ~1e-13 relative, the unselected cells see little voltage).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from circuitsim import __version__
from circuitsim.design import Crossbar
from circuitsim.errors import ProgrammingError
from circuitsim.programming.faults import Faults
from circuitsim.programming.pulses import (
    SCHEMES,
    CellModels,
    OperatingPoint,
    PulseBias,
    apply_pulse_transient,
    apply_row_pulses,
    write_bias,
)
from circuitsim.validate import finite_array, positive_scalar

ORDERS = ("row", "cell")
PULSE_ENGINES = ("quasistatic", "spice", "numpy")
STUCK_MOVE = 0.01  # a failed cell whose conductance moved less than this share of its band is reported stuck


@dataclass(frozen=True)
class WriteVerify:
    """The write-verify algorithm (module docstring). Voltages are magnitudes [V]; the device's
    own SET polarity is applied. width_s / edge_s: pulse flat top and edges [s]; v_read: read
    voltage of the verify [V]; tolerance: relative half-width of the band [-]; v_gate_set /
    v_gate_reset: 1T1R gate voltages [V] (None: the transistor's v_gate_on); read_time_s: time
    one read-verify takes [s] (for the programming time)."""

    v_set_start: float
    v_set_step: float
    v_set_max: float
    v_reset_start: float
    v_reset_step: float
    v_reset_max: float
    width_s: float
    v_read: float
    tolerance: float = 0.05
    max_pulses: int = 60
    order: str = "row"
    scheme: str = "v/2"
    edge_s: float | None = None
    v_gate_set: float | None = None
    v_gate_reset: float | None = None
    read_time_s: float = 100e-9

    def __post_init__(self):
        for name in ("v_set_start", "v_set_step", "v_set_max", "v_reset_start", "v_reset_step", "v_reset_max",
                     "width_s", "v_read", "read_time_s"):
            positive_scalar(f"WriteVerify.{name}", getattr(self, name))
        if self.v_set_start > self.v_set_max or self.v_reset_start > self.v_reset_max:
            raise ValueError("WriteVerify: start amplitudes must not exceed the maximum ones")
        if not 0 < self.tolerance < 1:
            raise ValueError(f"WriteVerify.tolerance must be in (0, 1), got {self.tolerance!r}")
        if not isinstance(self.max_pulses, int) or self.max_pulses < 1:
            raise ValueError(f"WriteVerify.max_pulses must be an integer >= 1, got {self.max_pulses!r}")
        if self.order not in ORDERS or self.scheme not in SCHEMES:
            raise ValueError(f"WriteVerify: order must be one of {ORDERS} and scheme one of {SCHEMES}")
        if self.edge_s is not None:
            positive_scalar("WriteVerify.edge_s", self.edge_s)

    @property
    def edge(self) -> float:
        return self.width_s / 100 if self.edge_s is None else self.edge_s

    def as_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True, eq=False)
class ProgrammedArray:
    """Outcome of program_array. Per cell (rows, cols): target_s and conductance_s [S] (read at
    v_read after the whole array is written), pulses, energy_j [J] dissipated in the cell by its
    own pulses, disturb_s [S]: the conductance change the cell picked up while other cells were
    written (signed sum), peak_set_current_a [A]: largest current during its own SET pulses,
    converged (in band when its own writing ended), failed (never reached the band),
    stuck (failed without moving: a stuck-at cell, or one on an open line), states: final
    normalized states.
    Array totals: total_energy_j (all sources, every pulse) [J], time_s (pulses, edges and
    verifies, in order) [s], n_pulses (pulse events; a row pulse writes several cells)."""

    target_s: np.ndarray
    conductance_s: np.ndarray
    pulses: np.ndarray
    energy_j: np.ndarray
    disturb_s: np.ndarray
    peak_set_current_a: np.ndarray
    converged: np.ndarray
    failed: np.ndarray
    stuck: np.ndarray
    states: np.ndarray
    total_energy_j: float
    time_s: float
    n_pulses: int
    provenance: dict = field(default_factory=dict)

    @property
    def relative_error(self) -> np.ndarray:
        """(conductance − target)/target per cell."""
        return self.conductance_s / self.target_s - 1.0

    def as_tree(self) -> dict:
        """Inputs/outputs for circuitsim.store (arrays and numbers only)."""
        names = ("conductance_s", "pulses", "energy_j", "disturb_s", "peak_set_current_a", "converged", "failed",
                 "stuck", "states")
        out = {n: getattr(self, n) for n in names}
        out.update(total_energy_j=self.total_energy_j, time_s=self.time_s, n_pulses=self.n_pulses)
        return out


def conductance_range(models: CellModels, v_read: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G at x = 0, G at x = 1, which end is ON: 1 where x = 1 has the larger conductance) per cell."""
    shape = models.shape
    g0 = models.read_conductance(np.zeros(shape), v_read)
    g1 = models.read_conductance(np.ones(shape), v_read)
    return g0, g1, (g1 > g0).astype(float)


def set_sign(models: CellModels, v_probe: float) -> float:
    """Sign of the voltage that raises the read conductance (the SET polarity), one for the array:
    the sign whose pulse at |v_probe| moves the state faster towards the ON end."""
    device = models.groups[0][0]
    toward_on = 1.0 if device.current(0.01, 1.0) > device.current(0.01, 0.0) else -1.0
    return 1.0 if toward_on * device.dxdt(v_probe, 0.5) > toward_on * device.dxdt(-v_probe, 0.5) else -1.0


def state_for(models: CellModels, g_target: np.ndarray, v_read: float) -> np.ndarray:
    """The state at which each device reads g_target (its read conductance is monotone in x):
    vectorized bisection to 1e-12."""
    g_target = np.broadcast_to(np.asarray(g_target, dtype=float), models.shape)
    _, _, on_end = conductance_range(models, v_read)
    lo, hi = np.zeros(models.shape), np.ones(models.shape)
    for _ in range(42):
        mid = 0.5 * (lo + hi)
        below = (models.read_conductance(mid, v_read) < g_target) == (on_end == 1.0)  # target lies toward x = 1
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _check(xb: Crossbar, models: CellModels, target: np.ndarray, wv: WriteVerify, faults: Faults | None) -> None:
    """Refuse what cannot succeed, before any pulse: targets outside the devices' range, a SET
    compliance below the current the target needs, a band narrower than the weakest pulse's step."""
    g0, g1, _ = conductance_range(models, wv.v_read)
    low, high = np.minimum(g0, g1), np.maximum(g0, g1)
    outside = (target < low) | (target > high)
    if faults is not None:
        outside &= ~faults.stuck
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ProgrammingError(f"target {target[i, j]:.4g} S of cell ({i}, {j}) is outside the device's range "
                               f"[{low[i, j]:.4g}, {high[i, j]:.4g}] S (read at {wv.v_read:g} V)")
    x_t = state_for(models, target, wv.v_read)
    sign = set_sign(models, wv.v_set_max)
    if xb.transistor is not None:
        t = xb.transistor
        v_gate = t.v_gate_on if wv.v_gate_set is None else wv.v_gate_set
        i_sat = t.kp / 2 * t.w / t.l * max(v_gate - t.vto, 0.0) ** 2 * (1 + t.lam * wv.v_set_max)
        need = _set_current(models, x_t, sign, wv)
        if i_sat < need:
            raise ProgrammingError(
                f"SET compliance {i_sat:.4g} A (gate at {v_gate:g} V, vto {t.vto:g} V) is below the {need:.4g} A "
                "the highest target needs at its SET threshold: those cells can never SET; raise v_gate_set")
    band = np.abs(state_for(models, target * (1 + wv.tolerance), wv.v_read)
                  - state_for(models, target * (1 - wv.tolerance), wv.v_read))
    for kind, v_start, polarity in (("SET", wv.v_set_start, sign), ("RESET", wv.v_reset_start, -sign)):
        v_dev = _isolated_device_voltage(xb, models, x_t, polarity * v_start, _gate(xb, wv, polarity * sign))
        step = np.abs(models.dxdt(v_dev, x_t)) * wv.width_s
        if np.any(step > band):
            k = np.argmax(step / band)
            raise ProgrammingError(
                f"tolerance {wv.tolerance:g} is impossible: one {kind} pulse at v_{kind.lower()}_start = {v_start:g} V "
                f"moves the state by {step.flat[k]:.3g}, more than the band's width {band.flat[k]:.3g} in state at "
                "that cell's target; widen the tolerance, shorten width_s or lower the start amplitude")


def _isolated_device_voltage(xb: Crossbar, models: CellModels, x: np.ndarray, v_cell: float,
                             v_gate: float | None) -> np.ndarray:
    """Voltage across each device at state x when v_cell is applied to its cell alone (device and
    selector or transistor, no wires): one DC solve of all the cells side by side."""
    rows, cols = models.shape
    single = Crossbar(conductance=np.ones((1, rows * cols)), selector=xb.selector, transistor=xb.transistor)
    side_by_side = CellModels(np.array(models.devices, dtype=object).reshape(1, -1), single.shape)
    gates = None if v_gate is None else np.array([v_gate])
    bias = PulseBias(np.array([v_cell]), np.zeros(rows * cols), np.zeros(1, bool), np.zeros(rows * cols, bool), gates)
    return OperatingPoint((single,), side_by_side, (bias,), None).solve(x.reshape(1, -1))[0].reshape(rows, cols)


def _set_current(models: CellModels, x_t: np.ndarray, sign: float, wv: WriteVerify) -> float:
    """The largest current a device needs to keep SETting at its target state: at the lowest
    voltage whose rate moves the state by 1e-3 in max_pulses pulses."""
    volts = np.linspace(0.0, wv.v_set_max, 401)[1:, None]
    worst = 0.0
    for device, ks in models.groups:
        x = x_t.ravel()[ks][None, :]
        moving = np.abs(device.dxdt(sign * volts, x)) * wv.width_s * wv.max_pulses >= 1e-3
        first = np.argmax(moving, axis=0)
        current = np.abs(device.current(sign * volts[first, 0], x[0]))
        worst = max(worst, float(np.max(np.where(moving.any(axis=0), current, 0.0), initial=0.0)))
    return worst


@dataclass
class _Cells:
    """Mutable bookkeeping of the write-verify loop (per cell)."""

    active: np.ndarray
    polarity: np.ndarray  # +1 SET, -1 RESET
    amplitude: np.ndarray  # [V] magnitude of the next pulse
    pulses: np.ndarray
    energy: np.ndarray
    disturb: np.ndarray
    peak_set: np.ndarray
    first_g: np.ndarray


def program_array(xb: Crossbar, cells, target_conductance, write_verify: WriteVerify, *, states=None,
                  faults: Faults | None = None, pulse_engine: str = "quasistatic", worker=None,
                  progress=None, concurrent_rows: bool = True) -> ProgrammedArray:
    """Program target_conductance (rows, cols) [S] into the array (module docstring).

    xb: wiring, selector or access transistor (its conductance only marks open cells, 0);
    cells: the stateful devices, one or (rows, cols); states: start states (default each
    device's x0); faults: a Faults map; progress: a callable(done_cells, total_cells) called
    as cells finish (e.g. a progress bar's update); concurrent_rows: in a 1T1R array written
    row by row on the quasi-static model, simulate the rows side by side (module docstring).
    Bad requests raise ProgrammingError before any pulse.
    """
    start = time.perf_counter()
    wv = write_verify
    if not isinstance(xb, Crossbar) or not isinstance(wv, WriteVerify):
        raise TypeError("program_array takes a Crossbar and a WriteVerify")
    if pulse_engine not in PULSE_ENGINES:
        raise ValueError(f"unknown pulse_engine {pulse_engine!r}; choose one of {PULSE_ENGINES}")
    rows, cols = xb.shape
    models = CellModels(cells, xb.shape)
    target = finite_array("target_conductance", target_conductance, shape=(rows, cols), positive=True)
    if faults is not None and faults.shape != (rows, cols):
        raise ValueError(f"faults are for a {faults.shape} array, this one is {rows}x{cols}")
    _check(xb, models, target, wv, faults)
    _, _, on_end = conductance_range(models, wv.v_read)
    x = models.initial_state if states is None else np.clip(finite_array("states", states, shape=(rows, cols)), 0, 1)
    frozen = None
    if faults is not None:
        x = faults.pin_states(x, on_end)
        frozen = faults.stuck
    sign = set_sign(models, wv.v_set_max)
    low, high = target * (1 - wv.tolerance), target * (1 + wv.tolerance)
    g = models.read_conductance(x, wv.v_read)
    writable = xb.conductance > 0
    book = _Cells(active=writable & ((g < low) | (g > high)), polarity=np.where(g < low, 1.0, -1.0),
                  amplitude=np.where(g < low, wv.v_set_start, wv.v_reset_start), pulses=np.zeros((rows, cols), int),
                  energy=np.zeros((rows, cols)), disturb=np.zeros((rows, cols)), peak_set=np.zeros((rows, cols)),
                  first_g=g.copy())
    total_cells = int(book.active.sum())
    total_energy, elapsed, events = 0.0, 0.0, 0
    converged = ~book.active & writable
    for group in _groups(xb, wv, pulse_engine, concurrent_rows):
        while (book.active & group).any():
            for polarity in (1.0, -1.0):
                selected = book.active & group & (book.polarity == polarity)
                pulsed = np.flatnonzero(selected.any(axis=1))
                if not len(pulsed):
                    continue
                biases = [_bias(xb, row, np.where(selected[row], polarity * sign * book.amplitude[row], 0.0), wv,
                                _gate(xb, wv, polarity), faults) for row in pulsed]
                g_before = models.read_conductance(x, wv.v_read)
                if pulse_engine == "quasistatic":
                    out = apply_row_pulses(xb, models, x, biases, wv.width_s, wv.edge, frozen=frozen)
                else:
                    (bias,) = biases  # one row at a time
                    out = apply_pulse_transient(xb, models, x, bias, wv.width_s, wv.edge, engine=pulse_engine,
                                                worker=worker)
                x = out.states if frozen is None else np.where(frozen, x, out.states)
                g_after = models.read_conductance(x, wv.v_read)
                book.disturb += np.where(selected, 0.0, g_after - g_before)
                book.pulses += selected
                book.energy += np.where(selected, out.cell_energy_j, 0.0)
                if polarity > 0:
                    book.peak_set = np.maximum(book.peak_set, np.where(selected, out.peak_current_a, 0.0))
                total_energy += out.energy_j
                elapsed += len(pulsed) * (wv.width_s + 3 * wv.edge + wv.read_time_s)
                events += len(pulsed)
            _verify(book, models.read_conductance(x, wv.v_read), low, high, group, wv, converged)
            if progress is not None:
                progress(total_cells - int(book.active.sum()), total_cells)
    g = models.read_conductance(x, wv.v_read)
    failed = writable & ~converged
    moved = np.abs(g - book.first_g) > STUCK_MOVE * (high - low)
    provenance = {"circuitsim_version": __version__, "pulse_engine": pulse_engine, "cell_type": xb.cell_type,
                  "write_verify": wv.as_dict(), "wall_time_s": time.perf_counter() - start,
                  "devices": sorted({type(d).__name__ for d in models.devices})}
    return ProgrammedArray(target, g, book.pulses, book.energy, book.disturb, book.peak_set, converged, failed,
                           failed & ~moved, x, total_energy, elapsed, events, provenance)


def _groups(xb: Crossbar, wv: WriteVerify, pulse_engine: str, concurrent_rows: bool) -> list[np.ndarray]:
    """(rows, cols) masks of the cells written together, one group after another: every cell
    (order "cell"), every row ("row"), or all rows at once (concurrent 1T1R rows)."""
    rows, cols = xb.shape
    if wv.order == "cell":
        index = np.arange(rows * cols).reshape(rows, cols)
        return [index == k for k in range(rows * cols)]
    if concurrent_rows and xb.transistor is not None and pulse_engine == "quasistatic":
        return [np.ones((rows, cols), dtype=bool)]
    return [np.broadcast_to(np.arange(rows)[:, None] == i, (rows, cols)) for i in range(rows)]


def _bias(xb: Crossbar, row: int, amplitudes: np.ndarray, wv: WriteVerify, v_gate: float | None,
          faults: Faults | None):
    """The pulse's line voltages (pulses.write_bias), open lines floating and shorted ones at 0 V."""
    if faults is None:
        return write_bias(xb.shape, row, amplitudes, wv.scheme, v_gate=v_gate)
    bias = write_bias(xb.shape, row, amplitudes, wv.scheme, v_gate=v_gate, held_rows=faults.shorted_rows,
                      held_cols=faults.shorted_cols)
    return dataclasses.replace(bias, floating_rows=bias.floating_rows | faults.open_rows,
                               floating_cols=bias.floating_cols | faults.open_cols)


def _gate(xb: Crossbar, wv: WriteVerify, polarity: float) -> float | None:
    """The selected row's gate voltage [V] for a SET (polarity > 0) or RESET pulse; None without transistors."""
    if xb.transistor is None:
        return None
    chosen = wv.v_gate_set if polarity > 0 else wv.v_gate_reset
    return xb.transistor.v_gate_on if chosen is None else float(chosen)


def _verify(book: _Cells, g: np.ndarray, low: np.ndarray, high: np.ndarray, group: np.ndarray, wv: WriteVerify,
            converged: np.ndarray) -> None:
    """Read-verify the group's active cells and choose each one's next pulse."""
    live = book.active & group
    in_band = live & (g >= low) & (g <= high)
    converged |= in_band
    overshoot = live & ~in_band & (((book.polarity > 0) & (g > high)) | ((book.polarity < 0) & (g < low)))
    book.polarity[overshoot] *= -1
    book.amplitude[overshoot] = np.where(book.polarity[overshoot] > 0, wv.v_set_start, wv.v_reset_start)
    climb = live & ~in_band & ~overshoot
    step = np.where(book.polarity > 0, wv.v_set_step, wv.v_reset_step)
    cap = np.where(book.polarity > 0, wv.v_set_max, wv.v_reset_max)
    book.amplitude[climb] = np.minimum(book.amplitude[climb] + step[climb], cap[climb])
    book.active &= ~in_band & (book.pulses < wv.max_pulses)
