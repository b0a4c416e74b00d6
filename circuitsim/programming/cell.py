"""Programming one cell of a memristor array with a write pulse, and the write disturb it causes.

The pulse is applied with the bias schemes of circuitsim.analysis (floating, V/2, V/3): every
driven line follows the same trapezoid, scaled to its bias voltage, and the array is run as a
transient (circuitsim.transient, SPICE by default) so the half-selected cells' states move
exactly as much as their device models make them.

1T1R arrays (Crossbar(transistor=...)): the selected row's gate is held at v_gate (default the
transistor's v_gate_on) for the whole transient, before, during and after the pulse, and every
other gate at 0 V, so the cells of unselected rows are cut off by their transistors while the
lines stay above −vto (an NMOS conducts once its source side falls below gate − vto: a RESET
with v_write < −2·vto under V/2 turns them on); the cells of the selected row see the scheme's
bias as in a 1R array. The selected cell's SET current is capped by its transistor's
saturation current kp/2·(w/l)·(v_gate − vto)²·(1 + λ·V_ds) (the current compliance), so a
lower gate voltage stops a SET at a lower conductance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.analysis import bias, half_selected
from circuitsim.design import Crossbar
from circuitsim.spice.worker import SpiceWorker
from circuitsim.transient import ArrayTransient, Drive, array_transient, pulse_times
from circuitsim.validate import finite_array


@dataclass(frozen=True, eq=False)
class Programming:
    """Outcome of one write pulse.

    states_before / states_after: (rows, cols) normalized states; change = after − before;
    selected_change: the written cell's change; half_selected: mask of the cells sharing its row
    or column; half_selected_max_change / unselected_max_change: largest |change| among them
    (the write disturb); waveforms: the full transient; v_gate: the selected row's gate voltage
    [V] (1T1R arrays; None otherwise).
    """

    row: int
    col: int
    v_write: float
    scheme: str
    states_before: np.ndarray
    states_after: np.ndarray
    half_selected: np.ndarray
    waveforms: ArrayTransient
    v_gate: float | None = None

    @property
    def change(self) -> np.ndarray:
        return self.states_after - self.states_before

    @property
    def selected_change(self) -> float:
        return float(self.change[self.row, self.col])

    @property
    def half_selected_max_change(self) -> float:
        return float(np.abs(self.change[self.half_selected]).max(initial=0.0))

    @property
    def unselected_max_change(self) -> float:
        rest = ~self.half_selected
        rest[self.row, self.col] = False
        return float(np.abs(self.change[rest]).max(initial=0.0))


def program_cell(xb: Crossbar, cells, row: int, col: int, v_write: float, width_s: float, *,
                 scheme: str = "v/2", edge_s: float | None = None, v_gate: float | None = None,
                 engine: str = "spice", max_step_s: float | None = None,
                 worker: SpiceWorker | None = None) -> Programming:
    """Write cell (row, col) with one pulse of v_write [V] lasting width_s [s].

    cells: the array's stateful devices (one, or a (rows, cols) array of them, see
    transient.array_transient); edge_s: rise and fall time [s] (default width/100); the
    pulse is followed by one edge of rest so the states settle at 0 V. v_gate: 1T1R arrays
    only, the selected row's gate voltage [V] (default the transistor's v_gate_on; the other
    gates are at 0 V, see the module docstring).
    """
    edge = width_s / 100 if edge_s is None else float(edge_s)
    b = bias(xb.shape, row, col, v_write, scheme)
    gates = _gates(xb, row, v_gate)
    t, envelope = pulse_times([1.0], width_s, width_s + 3 * edge, edge)
    drive = Drive(t, envelope[:, None] * b.v_rows, envelope[:, None] * b.v_cols,
                  None if gates is None else np.tile(gates, (len(t), 1)))
    res = array_transient(xb, cells, drive, engine=engine, max_step_s=max_step_s, floating_rows=b.floating_rows,
                          floating_cols=b.floating_cols, worker=worker)
    return Programming(row, col, float(v_write), scheme, res.initial_state, res.state[-1],
                       half_selected(xb.shape, row, col), res, None if gates is None else float(gates[row]))


def _gates(xb: Crossbar, row: int, v_gate: float | None) -> np.ndarray | None:
    """(rows,) gate voltages [V] of a 1T1R write: the selected row's at v_gate, the others at 0 V."""
    if xb.transistor is None:
        if v_gate is not None:
            raise ValueError(f"v_gate applies only to 1T1R arrays (Crossbar(transistor=...)), this one is "
                             f"{xb.cell_type}")
        return None
    gates = np.zeros(xb.shape[0])
    gates[row] = xb.transistor.v_gate_on if v_gate is None else finite_array("v_gate", v_gate, shape=())
    return gates
