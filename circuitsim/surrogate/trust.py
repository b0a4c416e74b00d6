"""How far a surrogate answer is from the exact one: its residual in the exact equations.

A 1S1R array (every row driven, every column sensed at 0 V) is solved exactly by the cell
currents I [A] with

    v_rows − W·I = h(I),   h(I) = I/g + v0·asinh(I/i0)   (device g [S] in series with the selector)

where W·I [V] are the wire drops that the currents I cause, exact by cumulative sums along
each line (those of forms.row_wire_volts and col_wire_volts, done in place here). W = W_row + W_col
is symmetric positive semidefinite and h is increasing. At the surrogate's cell currents the residual
ρ = v_rows − W·I − h(I) [V] is not zero; to first order the error e = I − I* solves the
symmetric positive definite system (W + H)·e = −ρ, H = diag h'(I) [Ω]. Preconditioned conjugate
gradients (W by cumulative sums, diagonal preconditioner) solve it in a few iterations; the
column-current error is Σ_i e_ij, and the part CG leaves unresolved after k iterations is
bounded by √rows·‖r_k‖₂ / min H (λ_min(W + H) ≥ min H). The cost is a few passes over the
batch's cell array: no factorization, nothing the exact engine would do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.surrogate.forms import col_path_ohm, row_path_ohm

CG_RTOL = 1e-2      # relative CG residual at which the first-order error is resolved; the rest is bounded
CG_MAX_ITER = 60


@dataclass(frozen=True, eq=False)
class Equations:
    """The input-independent parts of one design's exact cell equations (cached with the design)."""

    g: np.ndarray          # (rows, cols) device conductance [S], 1 where the cell is open
    on: np.ndarray         # (rows, cols) bool: cells that conduct (g > 0)
    r_row: np.ndarray      # (rows, cols) row-wire segments [Ω], driver resistance in segment 0
    r_col: np.ndarray      # (rows, cols) column-wire segments [Ω], sense resistance in the bottom one
    w_diag: np.ndarray     # (rows, cols) diagonal of W [Ω]: the wire from the cell to driver plus to sense
    i0: float              # selector saturation current [A]
    v0: float              # selector voltage scale [V]

    @classmethod
    def of(cls, xb: Crossbar) -> Equations:
        on = xb.conductance > 0
        r_row, r_col = row_path_ohm(xb), col_path_ohm(xb)
        w_diag = np.cumsum(r_row, axis=1) + np.cumsum(r_col[::-1], axis=0)[::-1]
        return cls(np.where(on, xb.conductance, 1.0), on, r_row, r_col, w_diag, xb.selector.i0, xb.selector.v0)

    def wire_drop(self, cell_i: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """W·I [V] (batch, rows, cols): row-wire drop from the driver plus column-wire rise to the sense node.

        In place into `out` (and one scratch array): the check runs this once per CG iteration.
        """
        dtype = cell_i.dtype
        row = np.empty_like(cell_i) if out is None else out
        np.cumsum(cell_i[..., ::-1], axis=-1, out=row[..., ::-1])        # current through row segment j
        row *= self.r_row.astype(dtype, copy=False)
        np.cumsum(row, axis=-1, out=row)
        col = np.cumsum(cell_i, axis=-2)                                   # current through column segment i
        col *= self.r_col.astype(dtype, copy=False)
        np.cumsum(col[..., ::-1, :], axis=-2, out=col[..., ::-1, :])
        row += col
        return row

    def residual(self, v_rows: np.ndarray, cell_i: np.ndarray) -> np.ndarray:
        """ρ [V] (batch, rows, cols): how far each cell's voltage is from what its current needs."""
        needed = cell_i / self.g + self.v0 * np.arcsinh(cell_i / self.i0)
        return np.where(self.on, v_rows[:, :, None] - self.wire_drop(cell_i) - needed, 0.0)


@dataclass(frozen=True)
class Estimate:
    """column_error_a: (batch, cols) bound on |I_col − I_col exact| [A] to first order;
    relative: its largest entry over the full scale (largest |column current|) of the batch;
    iterations: CG iterations used."""

    column_error_a: np.ndarray
    relative: float
    iterations: int


def relative(column_error_a: np.ndarray, column_i: np.ndarray) -> float:
    """Largest column error over the full scale of the batch, the calibration's error measure."""
    full_scale = float(np.abs(column_i).max(initial=0.0))
    worst = float(np.max(column_error_a, initial=0.0))
    return worst / full_scale if full_scale > 0 else (0.0 if worst == 0 else np.inf)


def estimate(eq: Equations, v_rows: np.ndarray, cell_i: np.ndarray) -> Estimate:
    """First-order error of the column currents Σ_i cell_i (see the module docstring).

    The residual is formed in float64 (it is a small difference of large terms); the error
    equation is solved in float32, enough for an estimate that needs two digits.
    """
    column_i = cell_i.sum(axis=1)
    if not (np.all(np.isfinite(cell_i)) and np.all(np.isfinite(v_rows))):
        return Estimate(np.full(column_i.shape, np.inf), np.inf, 0)
    rhs = (-eq.residual(v_rows, cell_i)).astype(np.float32)
    slope = (1.0 / eq.g + eq.v0 / np.sqrt(eq.i0 ** 2 + cell_i ** 2)).astype(np.float32)   # H = h'(I) [Ω]
    precondition = np.where(eq.on, 1.0 / (slope + eq.w_diag), 0.0).astype(np.float32)
    off = None if eq.on.all() else ~eq.on

    def apply(x, out):
        eq.wire_drop(x, out)
        out += slope * x
        if off is not None:
            out[:, off] = 0.0
        return out

    error, r, iterations = _conjugate_gradients(apply, rhs, precondition)
    min_slope = np.min(np.where(eq.on, slope, np.inf), axis=(1, 2))
    unresolved = np.sqrt(v_rows.shape[1]) * np.sqrt(_dot(r, r)) / min_slope
    column_error = np.abs(error.sum(axis=1, dtype=float)) + unresolved[:, None]
    return Estimate(column_error, relative(column_error, column_i), iterations)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("bij,bij->b", a, b, dtype=float)


def _conjugate_gradients(apply, rhs, precondition):
    """x ≈ A⁻¹·rhs for each vector of the batch (A symmetric positive definite, apply(x, out) = A·x);
    returns (x, residual, iterations)."""
    x, r = np.zeros_like(rhs), rhs.copy()
    target = CG_RTOL * np.sqrt(_dot(rhs, rhs))
    z = precondition * r
    p, rz, ap = z.copy(), _dot(r, z), np.empty_like(rhs)
    for k in range(CG_MAX_ITER):
        if np.all(np.sqrt(_dot(r, r)) <= target):
            return x, r, k
        apply(p, ap)
        pap = _dot(p, ap)
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0).astype(rhs.dtype)[:, None, None]
        x += alpha * p
        r -= alpha * ap
        np.multiply(precondition, r, out=z)
        rz_next = _dot(r, z)
        p *= np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0).astype(rhs.dtype)[:, None, None]
        p += z
        rz = rz_next
    return x, r, CG_MAX_ITER
