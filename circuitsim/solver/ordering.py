"""Fill-reducing elimination order for a crossbar's nodal matrix: nested dissection on its geometry.

SuperLU's minimum-degree orderings do not know that row wires run only along rows and column
wires only along columns, so one line of row-wire nodes already separates the left half of an
array from the right half, and one line of column-wire nodes the top half from the bottom.
Eliminating the halves first and such separators last (nested dissection) gave, at 128×128 1R,
1.18 M nonzeros in L+U instead of 1.87 M with MMD_AT_PLUS_A, a 2× faster factorization and 1.25×
faster solves. Any order gives the same solution; this one only changes the work.
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from circuitsim.circuit import Circuit

LEAF_CELLS = 4  # blocks of at most this many cells are not split further


@functools.lru_cache(maxsize=16)
def grid_order(rows: int, cols: int) -> np.ndarray:
    """Flat indices into a (2, rows, cols) grid (layer 0: row-wire node of each cell, layer 1:
    column-wire node) in nested-dissection order."""

    def flat(layer: int, i, j) -> np.ndarray:
        return np.ravel_multi_index((np.full(np.broadcast(i, j).shape, layer), i, j), (2, rows, cols)).ravel()

    def block(i0: int, i1: int, j0: int, j1: int) -> list[np.ndarray]:
        if (i1 - i0) * (j1 - j0) <= LEAF_CELLS:
            i, j = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
            return [np.stack([flat(0, i, j), flat(1, i, j)], axis=1).ravel()]
        if j1 - j0 >= i1 - i0:  # cut between columns: the row-wire nodes of column m separate
            m, span = (j0 + j1) // 2, np.arange(i0, i1)
            # column m's own column wire hangs only on those nodes: eliminate it just before them
            return [*block(i0, i1, j0, m), *block(i0, i1, m + 1, j1), flat(1, span, m), flat(0, span, m)]
        m, span = (i0 + i1) // 2, np.arange(j0, j1)  # cut between rows: row m's column-wire nodes separate
        return [*block(i0, m, j0, j1), *block(m + 1, i1, j0, j1), flat(0, m, span), flat(1, m, span)]

    return np.concatenate(block(0, rows, 0, cols))


def elimination_order(circuit: Circuit, unknowns: np.ndarray) -> np.ndarray:
    """Permutation of range(len(unknowns)) (node indices of the system) in nested-dissection order.

    Merged nodes (zero-ohm segments) take the place of their first cell; unknowns at no cell
    position (e.g. behind a driver resistance) come last.
    """
    rows, cols = circuit.xb.shape
    nodes = np.stack([circuit.row_node, circuit.col_node]).ravel()[grid_order(rows, cols)]
    index = np.full(circuit.n_nodes, -1)
    index[unknowns] = np.arange(len(unknowns))
    ordered = index[nodes]
    ordered = ordered[ordered >= 0]
    _, first = np.unique(ordered, return_index=True)
    ordered = ordered[np.sort(first)]
    return np.concatenate([ordered, np.setdiff1d(np.arange(len(unknowns)), ordered)])


class OrderedLU:
    """Sparse LU of matrix[order][:, order]; solve() takes and returns vectors in the original order."""

    def __init__(self, matrix: sp.spmatrix, order: np.ndarray):
        self.order = order
        self.lu = splu(sp.csc_matrix(sp.csr_matrix(matrix)[order][:, order]), permc_spec="NATURAL")

    @property
    def nnz(self) -> int:
        return self.lu.L.nnz + self.lu.U.nnz

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        x = np.empty_like(rhs, dtype=float)
        x[self.order] = self.lu.solve(np.ascontiguousarray(rhs[self.order]))
        return x
