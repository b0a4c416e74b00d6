"""Transient nodal equations of a Circuit: C·dv/dt + i(v, x) = 0 at the free nodes, dx/dt = g(v, x)
for stateful cells, with the source voltages given as piecewise-linear waveforms.

Filled in below: the capacitance matrix and the energies both engines report.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.integrate import cumulative_trapezoid

from circuitsim.circuit import GROUND, Circuit
from circuitsim.solver.dc import incidence, inner_current
from circuitsim.solver.linear import laplacian


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


def delivered_energy(time_s: np.ndarray, source_volts: np.ndarray, source_currents: np.ndarray) -> np.ndarray:
    """Energy [J] the sources delivered from time_s[0] to each time point: the trapezoid rule over
    Σ v·i of the sources, (T, n_fixed) each."""
    power = np.sum(source_volts * source_currents, axis=1)
    return cumulative_trapezoid(power, time_s, initial=0.0)


def node_currents(circuit: Circuit, node_volts: np.ndarray, cell_currents: np.ndarray, gates) -> np.ndarray:
    """Net current (T, n_nodes) leaving each node through the wires, the cells' devices (their
    currents (T, cells) given: linear or stateful) and the selectors or transistors; no capacitor."""
    out = node_volts @ laplacian(circuit.res_a, circuit.res_b, 1.0 / circuit.res_ohm, circuit.n_nodes)
    out += cell_currents @ incidence(circuit.cell_hi, circuit.cell_lo, circuit.n_nodes)
    if circuit.inner_node is not None:
        m, b = circuit.inner_node.ravel(), circuit.col_node.ravel()
        out += inner_current(circuit, node_volts[:, m], node_volts[:, b], gates)[0] @ incidence(m, b, circuit.n_nodes)
    return out
