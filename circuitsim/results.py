"""Simulation results: one immutable record, extracted the same way for every engine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.circuit import Circuit


@dataclass(frozen=True, eq=False)
class Result:
    """Currents [A], voltages [V] and power [W] of a crossbar solution.

    With v_rows of shape (rows,) every array lacks the leading batch axis; with
    (batch, rows) it has it. column_currents flow into the sense nodes (> 0 for positive
    row voltages); row_currents flow out of the drivers; cell_voltages are row wire minus
    column wire at each cell; cell_currents flow from the row to the column side; power is
    the total delivered by all sources. node_voltages follows node_names; circuit is the
    flat circuit that was solved.
    """

    engine: str
    column_currents: np.ndarray
    row_currents: np.ndarray
    cell_voltages: np.ndarray
    cell_currents: np.ndarray
    power: np.ndarray
    node_voltages: np.ndarray
    circuit: Circuit
    provenance: dict

    @property
    def node_names(self) -> tuple[str, ...]:
        return self.circuit.node_names

    def node_voltage(self, name: str) -> np.ndarray:
        """Voltage of one node by its netlist name, e.g. 'r3c7'."""
        try:
            return self.node_voltages[..., self.node_names.index(name)]
        except ValueError:
            raise KeyError(f"no node {name!r}; zero-ohm segments merge nodes into their driver") from None


def extract(circuit: Circuit, engine: str, v: np.ndarray, source_currents: np.ndarray,
            fixed_volts: np.ndarray, single: bool, provenance: dict, cell_currents: np.ndarray | None = None) -> Result:
    """Result from node voltages v (batch, n_nodes) and the currents each source delivers
    into the circuit (batch, n_fixed); cell_currents (batch, cells), if the engine has them
    (the numpy engine computes them where they are well conditioned), else from v."""
    rows, cols = circuit.xb.shape
    batch = v.shape[0]
    row_i = np.zeros((batch, rows))
    col_i = np.zeros((batch, cols))
    kind, line = circuit.fixed_kind, circuit.fixed_line
    row_i[:, line[kind == 0]] = source_currents[:, kind == 0]
    col_i[:, line[kind == 1]] = -source_currents[:, kind == 1]
    cell_v = v[:, circuit.row_node] - v[:, circuit.col_node]
    if cell_currents is None:  # open cells carry none, also where their nodes are undefined (no DC path)
        across = v[:, circuit.cell_hi] - v[:, circuit.cell_lo]
        cell_currents = np.where(circuit.cell_g > 0, across * circuit.cell_g, 0.0)
    cell_i = cell_currents.reshape(batch, rows, cols)
    power = np.sum(fixed_volts * source_currents, axis=1)
    arrays = [col_i, row_i, cell_v, cell_i, power, v]
    if single:
        arrays = [a[0] for a in arrays]
    return Result(engine, *arrays, circuit=circuit, provenance=provenance)
