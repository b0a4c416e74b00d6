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
from threadpoolctl import ThreadpoolController

from circuitsim.circuit import Circuit
from circuitsim.errors import ConvergenceError

LEAF_CELLS = 4  # blocks of at most this many cells are not split further
# CHOLMOD's supernodal factorization (dense BLAS-3 blocks) from this many unknowns on: at 1024² 1R
# it factorized 2.9x faster than the simplicial one, whose solves are faster on small systems
SUPERNODAL_UNKNOWNS = 200_000
SUPERLU_BLOCK = 16  # right-hand sides per SuperLU solve


def _spans(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For blocks with the given lengths: (which block, offset inside it) of every element."""
    which = np.repeat(np.arange(len(length)), length)
    return which, np.arange(len(which)) - np.repeat(np.cumsum(length) - length, length)


@functools.lru_cache(maxsize=16)
def grid_order(rows: int, cols: int) -> np.ndarray:
    """Flat indices into a (2, rows, cols) grid (layer 0: row-wire node of each cell, layer 1:
    column-wire node) in nested-dissection order.

    A block is split at its middle column (or row, if it is taller than wide): left part, right
    part, then the separator, whose column-wire nodes hang only on its row-wire nodes and go just
    before them. The recursion runs one level at a time over all blocks of that level (1024²
    has ~260 k blocks), placing every node at its final position.
    """
    position = np.empty(2 * rows * cols, dtype=np.int64)

    def place(layer, i, j, at):
        position[(layer * rows + i) * cols + j] = at

    blocks = np.array([[0, rows, 0, cols, 0]])  # i0, i1, j0, j1, first position
    while len(blocks):
        i0, i1, j0, j1, start = blocks.T
        h, w = i1 - i0, j1 - j0
        leaf = h * w <= LEAF_CELLS
        k, at = _spans(start[leaf], (h * w)[leaf])  # leaves: cells row-major, both nodes of a cell together
        i, j = i0[leaf][k] + at // w[leaf][k], j0[leaf][k] + at % w[leaf][k]
        place(0, i, j, start[leaf][k] + 2 * at)
        place(1, i, j, start[leaf][k] + 2 * at + 1)
        split = ~leaf
        i0, i1, j0, j1, start, h, w = (x[split] for x in (i0, i1, j0, j1, start, h, w))
        by_col = w >= h
        m = np.where(by_col, (j0 + j1) // 2, (i0 + i1) // 2)
        first = np.where(by_col, h * (m - j0), w * (m - i0))  # cells before the cut
        second = np.where(by_col, h * (j1 - m - 1), w * (i1 - m - 1))
        sep_at = start + 2 * (first + second)
        sep_len = np.where(by_col, h, w)
        b, at = _spans(sep_at, sep_len)
        col = by_col[b]
        i = np.where(col, i0[b] + at, m[b])
        j = np.where(col, m[b], j0[b] + at)
        place(np.where(col, 1, 0), i, j, sep_at[b] + at)  # column cut: column wire first
        place(np.where(col, 0, 1), i, j, sep_at[b] + sep_len[b] + at)
        blocks = np.concatenate([
            np.stack([i0, np.where(by_col, i1, m), j0, np.where(by_col, m, j1), start], axis=1),
            np.stack([np.where(by_col, i0, m + 1), i1, np.where(by_col, m + 1, j0), j1, start + 2 * first], axis=1)])
        blocks = blocks[(blocks[:, 1] > blocks[:, 0]) & (blocks[:, 3] > blocks[:, 2])]
    return np.argsort(position)


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
    first = np.full(len(unknowns), len(ordered))
    np.minimum.at(first, ordered, np.arange(len(ordered)))
    ordered = ordered[first[ordered] == np.arange(len(ordered))]  # a merged node at its first cell
    placed = np.zeros(len(unknowns), dtype=bool)
    placed[ordered] = True
    return np.concatenate([ordered, np.flatnonzero(~placed)])


def _is_identity(order: np.ndarray) -> bool:
    """Whether order keeps every unknown in place (solves then need no permutation: a system whose
    unknowns are numbered in elimination order saved 30 % of its solve time at 256², measured)."""
    return bool(np.all(order == np.arange(len(order))))


class OrderedLU:
    """Sparse LU of matrix[order][:, order]; solve() takes and returns vectors in the original order."""

    def __init__(self, matrix: sp.spmatrix, order: np.ndarray, symmetric: bool = False):
        """symmetric: matrix is a symmetric diagonally dominant M-matrix (a conductance matrix with
        at least one source reached from every node), which needs no pivoting: then the factors keep
        the given order exactly and schur() exists."""
        self.order, self.in_order = order, _is_identity(order)
        permuted = sp.csc_matrix(sp.csr_matrix(matrix)[order][:, order])
        pivoting = {"diag_pivot_thresh": 0.0, "options": {"SymmetricMode": True}} if symmetric else {}
        self.lu = splu(permuted, permc_spec="NATURAL", **pivoting)
        self.symmetric = symmetric

    def schur(self, k: int) -> np.ndarray:
        """The dense Schur complement of the matrix onto its last k unknowns in elimination order
        (L22·U22 of an unpivoted factorization): what the rest of the circuit looks like from them."""
        if not self.symmetric:
            raise ValueError("schur() needs the unpivoted (symmetric) factorization")
        return self.lu.L[-k:, -k:].toarray() @ self.lu.U[-k:, -k:].toarray()

    @property
    def nnz(self) -> int:
        return self.lu.L.nnz + self.lu.U.nnz

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solutions for right-hand sides (n,) or (n, k), SUPERLU_BLOCK columns at a time: SuperLU gets
        slower per right-hand side as the block widens (PERF_NOTES.md)."""
        permuted = rhs if self.in_order else rhs[self.order]
        if rhs.ndim == 1:
            x = self.lu.solve(np.ascontiguousarray(permuted))
        else:
            x = np.concatenate([self.lu.solve(np.asfortranarray(permuted[:, k:k + SUPERLU_BLOCK]))
                                for k in range(0, rhs.shape[1], SUPERLU_BLOCK)], axis=1)
        if self.in_order:
            return x
        out = np.empty_like(x)
        out[self.order] = x
        return out


class OrderedCholesky:
    """CHOLMOD's Cholesky factorization of matrix[order][:, order] (symmetric positive definite),
    with the interface of OrderedLU: 1.5-3x faster factorizations and solves than SuperLU on these
    matrices (PERF_NOTES.md), where scikit-sparse is installed."""

    def __init__(self, matrix: sp.spmatrix, order: np.ndarray, supernodal: bool = False, compiled: bool = False):
        """compiled: blocks of right-hand sides are solved by triangular.py with a copy of L (simplicial
        factorizations only), for callers that already run compiled code: it imports numba."""
        from sksparse.cholmod import cholesky

        self.order, self.in_order = order, _is_identity(order)
        self.factor = cholesky(sp.csc_matrix(sp.csr_matrix(matrix)[order][:, order]), ordering_method="natural",
                               mode="supernodal" if supernodal else "simplicial")
        self._lower = None  # (indptr, indices, data) of L, diagonal first in each column
        if compiled and not supernodal:
            lower = sp.csc_matrix(self.factor.L())
            lower.sort_indices()
            if np.array_equal(lower.indices[lower.indptr[:-1]], np.arange(lower.shape[0])):
                self._lower = lower.indptr, lower.indices, lower.data

    @property
    def nnz(self) -> int:
        return self.factor.L().nnz

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solutions for right-hand sides (n,) or (n, k) (C order: the columns' layout is kept)."""
        if self._lower is not None and rhs.ndim == 2:
            from circuitsim.solver import triangular  # numba: only for callers that asked (compiled=True)

            x = np.array(rhs if self.in_order else rhs[self.order], dtype=float, order="C")
            triangular.solve_in_place(*self._lower, x)
            if self.in_order:
                return x
            out = np.empty_like(x)
            out[self.order] = x
            return out
        if self.in_order:
            return np.ascontiguousarray(self.factor(rhs))
        x = np.empty_like(rhs, dtype=float)
        x[self.order] = self.factor(np.ascontiguousarray(rhs[self.order]))
        return x

    def schur(self, k: int) -> np.ndarray:
        """As OrderedLU.schur: L22·L22ᵀ."""
        trailing = self.factor.L()[-k:, -k:].toarray()
        return trailing @ trailing.T


@functools.cache
def have_cholmod() -> bool:
    try:
        import sksparse.cholmod  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


@functools.cache
def _blas_libraries() -> ThreadpoolController:
    """The BLAS libraries in this process, CHOLMOD's own (the system's) among them: loaded first."""
    have_cholmod()
    return ThreadpoolController()


def single_threaded_blas():
    """A context in which every BLAS runs on one thread: the solvers' dense work comes in many small
    blocks, on which threads cost more than they give, and callers run one solve per process."""
    return _blas_libraries().limit(limits=1, user_api="blas")


def factorize(matrix: sp.spmatrix, order: np.ndarray, *, symmetric: bool, label: str, schur: bool = False,
              compiled_solves: bool = False):
    """A factorization of matrix in the given elimination order, with solve() and, if symmetric,
    schur(): CHOLMOD where the matrix is symmetric positive definite and scikit-sparse is installed
    (supernodal on large systems unless schur() is wanted; compiled_solves: see OrderedCholesky),
    else SuperLU. A singular matrix (a node group with no DC path to a source that was not left out)
    is a ConvergenceError naming the design."""
    if symmetric and have_cholmod():
        from sksparse.cholmod import CholmodNotPositiveDefiniteError

        try:
            return OrderedCholesky(matrix, order, supernodal=not schur and len(order) >= SUPERNODAL_UNKNOWNS,
                                   compiled=compiled_solves)
        except CholmodNotPositiveDefiniteError as exc:
            raise ConvergenceError(f"{label}: the nodal matrix is singular (a node group has no DC path to a "
                                   "source)") from exc
    try:
        return OrderedLU(matrix, order, symmetric)
    except RuntimeError as exc:  # "Factor is exactly singular"
        raise ConvergenceError(f"{label}: the nodal matrix is singular (a node group has no DC path to a "
                               "source)") from exc
