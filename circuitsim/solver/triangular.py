"""Forward and back substitution with a sparse Cholesky factor L (L·Lᵀ = A), compiled (numba), on
right-hand sides laid out (unknowns, vectors) in C order: each column of L then updates whole
contiguous rows of the block, which vectorize. CHOLMOD's own solve takes its right-hand sides
column by column in Fortran order, a copy in and out of the solver's layout each time: on the
preconditioner solves of a 1T1R batch (25 right-hand sides, 64² and 256²) this ran 2.4-2.6x faster
than CHOLMOD's simplicial solve with those copies (measured). Compiled code is cached on disk."""
from __future__ import annotations

from numba import njit


@njit(cache=True)
def solve_in_place(indptr, indices, data, x):
    """x ← A⁻¹·x for A = L·Lᵀ, L lower triangular in CSC form with each column's diagonal entry first
    (indptr, indices, data); x (n, k) C order."""
    n, k = x.shape
    for j in range(n):  # L·y = x, column by column
        start = indptr[j]
        inverse = 1.0 / data[start]
        for c in range(k):
            x[j, c] *= inverse
        for p in range(start + 1, indptr[j + 1]):
            row, value = indices[p], data[p]
            for c in range(k):
                x[row, c] -= value * x[j, c]
    for j in range(n - 1, -1, -1):  # Lᵀ·x = y, the same columns as rows
        start = indptr[j]
        for p in range(start + 1, indptr[j + 1]):
            row, value = indices[p], data[p]
            for c in range(k):
                x[j, c] -= value * x[row, c]
        inverse = 1.0 / data[start]
        for c in range(k):
            x[j, c] *= inverse
