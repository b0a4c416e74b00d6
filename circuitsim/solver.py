"""Exact nodal solution of a Circuit with scipy sparse LU.

Linear arrays: one factorization serves the whole batch (and gives the transfer matrix).
Nonlinear cells (selectors, transistors): damped Newton per input vector, with source
stepping as the fallback when plain Newton does not converge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from circuitsim.circuit import Circuit


class ConvergenceError(RuntimeError):
    """Newton iteration did not converge (even with source stepping)."""


@dataclass(frozen=True)
class NewtonOptions:
    """vtol_v: converged when the largest node update is below this [V], or when every KCL
    residual is below reltol_kcl × (largest node conductance × drive voltage), the rounding
    floor of ill-conditioned arrays; max_step_v: Newton steps are scaled down to this [V];
    max_iter: iterations per solve; source_steps: ramp points of the source-stepping fallback."""

    vtol_v: float = 1e-9
    reltol_kcl: float = 1e-13
    max_step_v: float = 0.2
    max_iter: int = 200
    source_steps: int = 20


def _laplacian(circuit: Circuit) -> sp.csr_matrix:
    """Conductance matrix of all linear branches (wires and cells), over all nodes."""
    a = np.concatenate([circuit.res_a, circuit.cell_hi])
    b = np.concatenate([circuit.res_b, circuit.cell_lo])
    g = np.concatenate([1.0 / circuit.res_ohm, circuit.cell_g])
    n = circuit.n_nodes
    rows = np.concatenate([a, b, a, b])
    cols = np.concatenate([a, b, b, a])
    vals = np.concatenate([g, g, -g, -g])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _partition(circuit: Circuit):
    free = np.setdiff1d(np.arange(circuit.n_nodes), circuit.fixed)
    return free, circuit.fixed


def _factorize(matrix: sp.spmatrix, circuit: Circuit):
    try:
        return splu(sp.csc_matrix(matrix), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as exc:  # "Factor is exactly singular"
        raise ConvergenceError(f"{circuit.xb.shape[0]}x{circuit.xb.shape[1]} {circuit.xb.cell_type} array: "
                               "the nodal matrix is singular (a node has no DC path to a source, "
                               "e.g. a floating line whose cells are all open)") from exc


def transfer_matrix(circuit: Circuit) -> np.ndarray:
    """T with V_all = T @ V_fixed for a linear circuit: shape (n_nodes, n_fixed)."""
    if len(circuit.sel_a) or len(circuit.tr_d):
        raise ValueError("the transfer matrix exists only for linear (1R) arrays")
    lap = _laplacian(circuit)
    free, fixed = _partition(circuit)
    lu = _factorize(lap[free][:, free], circuit)
    t = np.zeros((circuit.n_nodes, len(fixed)))
    t[fixed, np.arange(len(fixed))] = 1.0
    if len(free):
        t[free] = -lu.solve(lap[free][:, fixed].toarray())
    return t


def _nonlinear_stamps(circuit: Circuit, v: np.ndarray, gate_v: np.ndarray):
    """Branch currents of the nonlinear elements and their derivatives for node voltages v.

    Returns (a, b, i, di_da, di_db): current i flows from node a to node b.
    """
    xb = circuit.xb
    parts = []
    if xb.selector is not None:
        i, g = xb.selector.current(v[circuit.sel_a] - v[circuit.sel_b])
        parts.append((circuit.sel_a, circuit.sel_b, i, g, -g))
    if xb.transistor is not None:
        i, dd, ds = xb.transistor.drain_current(v[circuit.tr_d], gate_v, v[circuit.tr_s])
        parts.append((circuit.tr_d, circuit.tr_s, i, dd, ds))
    return parts


def nonlinear_currents(circuit: Circuit, v: np.ndarray, gate_v: np.ndarray) -> np.ndarray:
    """Net current leaving each node through the nonlinear elements, for one voltage vector."""
    out = np.zeros(circuit.n_nodes)
    for a, b, i, _, _ in _nonlinear_stamps(circuit, v, gate_v):
        np.add.at(out, a, i)
        np.add.at(out, b, -i)
    return out


def _newton(circuit, lap, free, fixed, v_fixed, gate_v, v_start, opts: NewtonOptions):
    """Damped Newton for one input vector; returns node voltages or None if it did not converge."""
    v = v_start.copy()
    v[fixed] = v_fixed
    n = circuit.n_nodes
    lap_ff = lap[free][:, free]
    # residual floor: KCL cannot be met better than rounding of the largest branch currents
    itol_a = opts.reltol_kcl * np.max(np.abs(lap.diagonal())) * max(np.max(np.abs(v_fixed), initial=0.0), 1.0)
    for _ in range(opts.max_iter):
        stamps = _nonlinear_stamps(circuit, v, gate_v)
        resid = lap @ v
        rows, cols, vals = [], [], []
        for a, b, i, da, db in stamps:
            np.add.at(resid, a, i)
            np.add.at(resid, b, -i)
            rows += [a, a, b, b]
            cols += [a, b, a, b]
            vals += [da, db, -da, -db]
        jac = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        jac_ff = lap_ff + jac[free][:, free]
        f = resid[free]
        try:
            step = -splu(sp.csc_matrix(jac_ff), permc_spec="MMD_AT_PLUS_A").solve(f)
        except RuntimeError:
            return None
        largest = np.max(np.abs(step), initial=0.0)
        if largest > opts.max_step_v:
            step *= opts.max_step_v / largest
        v[free] += step
        if largest < opts.vtol_v or np.max(np.abs(f), initial=0.0) < itol_a:
            return v
    return None


def solve(circuit: Circuit, fixed_volts: np.ndarray, opts: NewtonOptions = NewtonOptions()) -> np.ndarray:
    """Node voltages (batch, n_nodes) for source voltages fixed_volts (batch, n_fixed)."""
    lap = _laplacian(circuit)
    free, fixed = _partition(circuit)
    batch = fixed_volts.shape[0]
    v_all = np.zeros((batch, circuit.n_nodes))
    v_all[:, fixed] = fixed_volts
    if not len(free):
        return v_all
    linear_lu = _factorize(lap[free][:, free], circuit) if not (len(circuit.sel_a) or len(circuit.tr_d)) else None
    if linear_lu is not None:
        rhs = -(lap[free][:, fixed] @ fixed_volts.T)
        v_all[:, free] = linear_lu.solve(np.ascontiguousarray(rhs)).T
        return v_all
    gate_cols = _gate_columns(circuit)
    for k in range(batch):
        gate_v = fixed_volts[k, gate_cols][circuit.tr_row] if len(circuit.tr_d) else None
        v = _newton(circuit, lap, free, fixed, fixed_volts[k], gate_v, v_all[k], opts)
        if v is None:
            v = _source_stepping(circuit, lap, free, fixed, fixed_volts[k], gate_v, opts)
        v_all[k] = v
    return v_all


def _gate_columns(circuit: Circuit) -> np.ndarray:
    """Column of fixed_volts holding the gate voltage of each row."""
    cols = np.zeros(circuit.xb.shape[0], dtype=int)
    is_gate = circuit.fixed_kind == 2
    cols[circuit.fixed_line[is_gate]] = np.flatnonzero(is_gate)
    return cols


def _source_stepping(circuit, lap, free, fixed, v_fixed, gate_v, opts):
    """Continuation: ramp the sources from 0 to full scale, each step warm-started."""
    v = np.zeros(circuit.n_nodes)
    for alpha in np.linspace(0, 1, opts.source_steps + 1)[1:]:
        nxt = _newton(circuit, lap, free, fixed, alpha * v_fixed,
                      None if gate_v is None else alpha * gate_v, v, opts)
        if nxt is None:
            xb = circuit.xb
            raise ConvergenceError(f"{xb.shape[0]}x{xb.shape[1]} {xb.cell_type} array: Newton did not converge "
                                   f"even with source stepping (stuck at {alpha:.0%} of the drive)")
        v = nxt
    return v
