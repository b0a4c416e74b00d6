"""Simulation results: one immutable record, extracted the same way for every engine."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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

    An engine may leave the per-node arrays (cell_voltages, cell_currents, node_voltages) to
    be computed on first use (`complete`): a large batch of column currents then never holds
    every node of every vector. They read the same either way.
    """

    engine: str
    column_currents: np.ndarray
    row_currents: np.ndarray
    _cell_voltages: np.ndarray | None
    _cell_currents: np.ndarray | None
    power: np.ndarray
    _node_voltages: np.ndarray | None
    circuit: Circuit
    provenance: dict
    complete: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def _detail(self, index: int) -> np.ndarray:
        if self._node_voltages is None and self.complete is not None:
            node_v, cell_v, cell_i = self.complete()
            for name, value in (("_node_voltages", node_v), ("_cell_voltages", cell_v), ("_cell_currents", cell_i)):
                object.__setattr__(self, name, value)
        return (self._node_voltages, self._cell_voltages, self._cell_currents)[index]

    @property
    def node_voltages(self) -> np.ndarray:
        return self._detail(0)

    @property
    def cell_voltages(self) -> np.ndarray:
        return self._detail(1)

    @property
    def cell_currents(self) -> np.ndarray:
        return self._detail(2)

    @property
    def node_names(self) -> tuple[str, ...]:
        return self.circuit.node_names

    def node_voltage(self, name: str) -> np.ndarray:
        """Voltage of one node by its netlist name, e.g. 'r3c7'."""
        try:
            return self.node_voltages[..., self.node_names.index(name)]
        except ValueError:
            raise KeyError(f"no node {name!r}; zero-ohm segments merge nodes into their driver") from None


def node_details(circuit: Circuit, v: np.ndarray, cell_currents: np.ndarray | None, single: bool) -> tuple:
    """(node_voltages, cell_voltages, cell_currents) of a Result from node voltages v (batch, n_nodes)
    and, if the engine has them, cell currents (batch, cells); else those come from v."""
    rows, cols = circuit.xb.shape
    batch = v.shape[0]
    cell_v = (v[:, circuit.row_node] - v[:, circuit.col_node]).reshape(batch, rows, cols)
    if cell_currents is None:  # open cells carry none, also where their nodes are undefined (no DC path)
        across = v[:, circuit.cell_hi] - v[:, circuit.cell_lo]
        cell_currents = np.where(circuit.cell_g > 0, across * circuit.cell_g, 0.0)
    arrays = (v, cell_v, cell_currents.reshape(batch, rows, cols))
    return tuple(a[0] for a in arrays) if single else arrays


def extract(circuit: Circuit, engine: str, v: np.ndarray | None, source_currents: np.ndarray,
            fixed_volts: np.ndarray, single: bool, provenance: dict, cell_currents: np.ndarray | None = None,
            complete: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None) -> Result:
    """Result from node voltages v (batch, n_nodes) and the currents each source delivers
    into the circuit (batch, n_fixed); cell_currents (batch, cells), if the engine has them
    (the numpy engine computes them where they are well conditioned), else from v. With v None,
    complete() gives (v, cell_currents) when a per-node array is first asked for."""
    rows, cols = circuit.xb.shape
    batch = source_currents.shape[0]
    row_i = np.zeros((batch, rows))
    col_i = np.zeros((batch, cols))
    kind, line = circuit.fixed_kind, circuit.fixed_line
    row_i[:, line[kind == 0]] = source_currents[:, kind == 0]
    col_i[:, line[kind == 1]] = -source_currents[:, kind == 1]
    power = np.sum(fixed_volts * source_currents, axis=1)
    totals = [col_i, row_i, power]
    if single:
        totals = [a[0] for a in totals]
    col_i, row_i, power = totals
    if v is None:
        return Result(engine, col_i, row_i, None, None, power, None, circuit=circuit, provenance=provenance,
                      complete=lambda: node_details(circuit, *complete(), single))
    node_v, cell_v, cell_i = node_details(circuit, v, cell_currents, single)
    return Result(engine, col_i, row_i, cell_v, cell_i, power, node_v, circuit=circuit, provenance=provenance)
