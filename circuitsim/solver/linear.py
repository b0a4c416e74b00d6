"""Linear (1R) arrays: one conductance matrix, factorized once, serving any number of input vectors.

Near-shorts are merged first (solver/shorts.py) and every solve is refined and checked
(refined()). Two ways to the source currents: solve every vector (node voltages come with
it), or, for a batch, the sources' conductance matrix S (I = S·V) and a dense matmul. S comes
from the factorization itself when the unknowns next to a source (the ports, one per driven
line or sense node) are eliminated last: its trailing block is the circuit as the ports see
it. At 256×256 that is 0.3 s against 10.6 s for one solve per driven line (measured), and no
node voltage of any vector is stored.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpotrf as potrf
from scipy.linalg.lapack import dpotri as potri

from circuitsim.circuit import Circuit
from circuitsim.errors import IllConditionedError
from circuitsim.solver.ordering import elimination_order, factorize
from circuitsim.solver.shorts import find_shorts

REFINE_BELOW = 1e-14  # componentwise backward error of a linear solve that needs no refinement
TRUST_BELOW = 1e-10  # ... and above which, after refinement, the solution is refused
SUBNORMAL_FLOOR = np.finfo(float).tiny / np.finfo(float).eps  # ~1e-292
BLOCK_VALUES = 1 << 22  # unknowns × right-hand sides solved at once (32 MB): bounds the memory of a batch


def laplacian(a, b, g, n: int) -> sp.csr_matrix:
    """Conductance matrix of branches a–b with conductances g, over n nodes."""
    return sp.csr_matrix((np.concatenate([g, g, -g, -g]),
                          (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))), shape=(n, n))


def describe(circuit: Circuit) -> str:
    rows, cols = circuit.xb.shape
    return f"{rows}x{cols} {circuit.xb.cell_type} array"


def refined(matrix: sp.spmatrix, factor, rhs: np.ndarray, x: np.ndarray, label: str) -> np.ndarray:
    """x after iterative refinement while its componentwise backward error |r| / (|A||x| + |b|)
    exceeds REFINE_BELOW; refuses an x that stays above TRUST_BELOW (a wrong answer must not
    pass quietly). One sparse matvec per check."""
    magnitude = abs(matrix)
    for _ in range(3):
        residual = rhs - matrix @ x
        scale = magnitude @ np.abs(x) + np.abs(rhs)
        # below SUBNORMAL_FLOOR numbers lose relative precision (subnormals): their rounding is no error
        error = np.max(np.abs(residual) / np.maximum(scale, SUBNORMAL_FLOOR), initial=0.0)
        if error <= REFINE_BELOW:
            return x
        x = x + factor.solve(residual)
    if error > TRUST_BELOW:
        raise IllConditionedError(f"{label}: the nodal solution keeps a backward error of {error:.2g} "
                                  "after iterative refinement: not trustworthy")
    return x


class LinearSystem:
    """The factorized nodal equations of a linear circuit (every node not held by a source, one
    per merged group of near-shorts, none cut off from every source)."""

    def __init__(self, circuit: Circuit, unknown: np.ndarray, ports_last: bool = False):
        """ports_last: eliminate the unknowns next to a source last, so the factorization holds the
        sources' view of the circuit (source_conductance() without a solve per source)."""
        self.circuit = circuit
        n, self.n_res = circuit.n_nodes, len(circuit.res_a)
        a = np.concatenate([circuit.res_a, circuit.cell_hi])
        b = np.concatenate([circuit.res_b, circuit.cell_lo])
        g = np.concatenate([1.0 / circuit.res_ohm, circuit.cell_g])
        self.shorts = find_shorts(a, b, g, circuit.fixed, n)
        self.rep, kept = np.arange(n), np.ones(len(g), dtype=bool)
        if self.shorts is not None:
            self.rep, kept[self.shorts.branch] = self.shorts.rep, False
        self.free = unknown[self.rep[unknown] == unknown]  # one unknown per merged group
        self.branches = laplacian(a[kept], b[kept], g[kept], n)  # symmetric: rows of v are vectors
        merged = self.branches if self.shorts is None else laplacian(self.rep[a[kept]], self.rep[b[kept]], g[kept], n)
        self.matrix = merged[self.free][:, self.free]
        self.coupling = merged[self.free][:, circuit.fixed]
        order = elimination_order(circuit, self.free)
        is_port = np.diff(self.coupling.tocsr().indptr) > 0
        self.ports = order[is_port[order]] if ports_last else order[:0]
        if ports_last:
            order = np.concatenate([order[~is_port[order]], self.ports])
        self.factor = (factorize(self.matrix, order, symmetric=True, label=describe(circuit), schur=ports_last)
                       if len(self.free) else None)

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        return refined(self.matrix, self.factor, rhs, self.factor.solve(rhs), describe(self.circuit))

    def _chunk(self) -> int:
        return max(1, BLOCK_VALUES // max(self.circuit.n_nodes, 1))

    def solve(self, fixed_volts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node voltages (batch, n_nodes), source currents (batch, n_fixed) and cell currents
        (batch, cells), solving the batch in chunks."""
        circuit, batch = self.circuit, len(fixed_volts)
        v = np.zeros((batch, circuit.n_nodes))
        sources = np.empty((batch, len(circuit.fixed)))
        cells = np.empty((batch, len(circuit.cell_g)))
        for start in range(0, batch, self._chunk()):
            part = slice(start, start + self._chunk())
            v[part, circuit.fixed] = fixed_volts[part]
            if self.factor is not None:
                v[part, self.free] = self._solve(-(self.coupling @ fixed_volts[part].T)).T
            v[part] = v[part][:, self.rep]  # merged nodes share their group's voltage
            leaving = v[part] @ self.branches
            cells[part] = (v[part][:, circuit.cell_hi] - v[part][:, circuit.cell_lo]) * circuit.cell_g
            if self.shorts is not None:
                through = self.shorts.branch_currents(leaving)
                is_cell = self.shorts.branch >= self.n_res
                cells[part][:, self.shorts.branch[is_cell] - self.n_res] = through[:, is_cell]
            sources[part] = leaving[:, circuit.fixed]
        return v, sources, cells

    def source_conductance(self) -> np.ndarray:
        """S (n_fixed, n_fixed): the currents the sources deliver per volt of each source (all others
        at 0 V), S = G_ss − Cᵀ·K⁻¹·C with K the Schur complement onto the unknowns next to a source
        (ports) and C their coupling to the sources. Needs ports_last."""
        circuit = self.circuit
        held = self.branches.tocsr()[circuit.fixed][:, circuit.fixed].toarray()
        if self.factor is None or not len(self.ports):
            return held
        coupling = self.coupling.tocsr()[self.ports]  # about one source per port: sparse
        # K is symmetric positive definite: its inverse from a Cholesky factorization (LAPACK potri)
        upper, info = potrf(self.factor.schur(len(self.ports)), lower=False)
        inverse, info_inv = potri(upper, lower=False) if info == 0 else (upper, info)
        if info_inv != 0:
            raise IllConditionedError(f"{describe(circuit)}: the circuit seen from its sources is not positive "
                                      "definite in double precision")
        inverse = np.triu(inverse) + np.triu(inverse, 1).T
        return held - (coupling.T @ (coupling.T @ inverse).T).T

    def source_currents(self, fixed_volts: np.ndarray) -> np.ndarray:
        """Source currents (batch, n_fixed) through S, checked on one vector against a refined solve."""
        currents = fixed_volts @ self.source_conductance().T
        check = self.solve(fixed_volts[:1])[1]
        error = np.max(np.abs(currents[:1] - check)) / max(np.max(np.abs(check)), 1e-300)
        if error > 1e-9:
            raise IllConditionedError(f"{describe(self.circuit)}: the sources' conductance matrix reproduces a "
                                      f"direct solve only to {error:.2g}: not trustworthy")
        return currents
