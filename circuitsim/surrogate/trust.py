"""How far a surrogate answer is from the exact one: its residual in the exact equations.

A 1S1R array (every row driven, every column sensed at 0 V) is solved exactly by the cell
currents I [A] with

    v_rows − W·I = h(I),   h(I) = I/g + v0·asinh(I/i0)   (device g [S] in series with the selector)

where W·I [V] are the wire drops that the currents I cause, exact by running sums along
each line (those of forms.row_wire_volts and col_wire_volts, here on (rows, cols, batch) arrays). W = W_row + W_col
is symmetric positive semidefinite and h is increasing. At the surrogate's cell currents the residual
ρ = v_rows − W·I − h(I) [V] is not zero; to first order the error e = I − I* solves the
symmetric positive definite system (W + H)·e = −ρ, H = diag h'(I) [Ω]. Preconditioned conjugate
gradients (W by running sums, diagonal preconditioner) solve it in a few iterations; the
column-current error is Σ_i e_ij, and the part CG leaves unresolved after k iterations, the
column sums of A⁻¹r_k, is bounded per column by Cauchy–Schwarz in the A⁻¹ inner product with
A ≥ H: |Σ_i (A⁻¹r_k)_ij| ≤ √(Σ_i 1/H_ij)·√(r_kᵀH⁻¹r_k). The cost is a few passes over the
batch's cell array: no factorization, nothing the exact engine would do. Most answers are
vouched for by that bound alone, before any CG iteration.

The same solve corrects an answer the bound cannot vouch for: I − e is one Newton step of the
exact equations from the surrogate's answer (estimate(..., correct=True)); model checks the
corrected answer like any other.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar, col_path_ohm, own_path_ohm, row_path_ohm

CG_RTOL = 1e-2      # relative CG residual at which the first-order error is resolved; the rest is bounded
CG_MAX_ITER = 60


@dataclass(frozen=True, eq=False)
class Equations:
    """The input-independent parts of one design's exact cell equations (cached with the design).

    Per-cell arrays (rows, cols), float64: the check works on cell arrays laid out (rows, cols,
    batch) in compiled passes (circuitsim.surrogate.kernels) that read these per cell.
    """

    inv_g: np.ndarray      # 1 / device conductance [Ω], 0 where the cell is open
    on: np.ndarray         # 1.0 where the cell conducts (g > 0), 0.0 where it is open
    r_row: np.ndarray      # row-wire segments [Ω], driver resistance in segment 0
    r_col: np.ndarray      # column-wire segments [Ω], sense resistance in the bottom one
    w_diag: np.ndarray     # diagonal of W [Ω]: the wire from the cell to driver plus to sense
    i0: float              # selector saturation current [A]
    v0: float              # selector voltage scale [V]

    @classmethod
    def of(cls, xb: Crossbar) -> Equations:
        on = xb.conductance > 0
        inv_g = np.where(on, 1.0 / np.where(on, xb.conductance, 1.0), 0.0)
        return cls(inv_g, on.astype(float), row_path_ohm(xb), col_path_ohm(xb), own_path_ohm(xb), xb.selector.i0,
                   xb.selector.v0)

    def wire_drop(self, cell_i: np.ndarray) -> np.ndarray:
        """W·I [V] (rows, cols, batch), float32: row-wire drop from the driver plus column-wire rise to the
        sense node, as the check's passes compute it (running sums along the lines)."""
        from circuitsim.surrogate import kernels  # numba: imported on first use (see there)

        x = np.ascontiguousarray(cell_i, dtype=np.float32)
        out = np.empty_like(x)
        kernels.wire_drop(x, self.r_row, self.r_col, out)
        return out


class Workspace:
    """Work arrays of estimate() kept between calls on one design (cached with it).

    Fresh multi-megabyte arrays cost more in page faults than the arithmetic done on them
    (simulate() on 100 vectors at 64x64, second call: 9.4 ms with fresh arrays, 5.5 ms with these).
    One caller at a time: take() yields the workspace, or None while another thread holds it
    (that caller then allocates its own). Nothing estimate() returns is a view of it except
    Estimate.correction, valid until the next estimate() with the same workspace.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._flat: dict[tuple[str, np.dtype], np.ndarray] = {}

    @contextmanager
    def take(self):
        held = self._lock.acquire(blocking=False)
        try:
            yield self if held else None
        finally:
            if held:
                self._lock.release()

    def array(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """The work array `name` of this shape and dtype (contents undefined), grown as needed."""
        size, key = int(np.prod(shape)), (name, np.dtype(dtype))
        flat = self._flat.get(key)
        if flat is None or flat.size < size:
            flat = self._flat[key] = np.empty(size, dtype)
        return flat[:size].reshape(shape)


def _array(work: Workspace | None, name: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, np.float32) if work is None else work.array(name, shape)


@dataclass(frozen=True)
class Estimate:
    """column_error_a: (batch, cols) bound on |I_col − I_col exact| [A] to first order;
    relative: its largest entry over the full scale (largest |column current|) of the batch;
    iterations: CG iterations used."""

    column_error_a: np.ndarray
    relative: float
    iterations: int
    correction: np.ndarray | None = None   # −e (rows, cols, batch) [A], float32, when asked for (correct=True)
                                           # and not vouched for before any CG iteration (nothing to correct)
    column_i: np.ndarray | None = None     # (batch, cols) [A]: Σ_i cell_i of the answer checked, summed in float64
    row_i: np.ndarray | None = None        # (batch, rows) [A]: Σ_j cell_i, summed in float64


def relative(column_error_a: np.ndarray, column_i: np.ndarray) -> float:
    """Largest column error over the full scale of the batch, the calibration's error measure."""
    full_scale = float(np.abs(column_i).max(initial=0.0))
    worst = float(np.max(column_error_a, initial=0.0))
    return worst / full_scale if full_scale > 0 else (0.0 if worst == 0 else np.inf)


def estimate(eq: Equations, v_rows: np.ndarray, cell_i: np.ndarray, decide_at: float | None = None,
             correct: bool = False, work: Workspace | None = None) -> Estimate:
    """First-order error of the column currents Σ_i cell_i (see the module docstring).

    cell_i (batch, rows, cols); no copy when it is a view of a float32 (rows, cols, batch) array
    (what forms.cell_currents returns). The cell arrays are float32 (half the memory traffic of
    float64): their rounding, ~1e-7 V on the residual of ~1 V terms, is far below the residual of
    any answer near the 1 % bound (~1e-4 V), enough for an estimate that needs two digits; every
    sum is taken in float64 (kernels).
    decide_at: a fraction of full scale; CG stops as soon as the estimate plus the bound on what
    it leaves unresolved is below it (the answer is then vouched for; the estimate reported is
    that upper value). correct: CG also keeps its solution, −e, in Estimate.correction; where
    the answer is not vouched for (CG ran to CG_RTOL), cell_i + correction is one Newton step of
    the exact equations from cell_i. work: reused work arrays (Workspace.take()), else fresh ones.
    """
    from circuitsim.surrogate import kernels  # numba: imported on first use (see there)

    x = np.moveaxis(cell_i, 0, -1)
    x = x if x.flags.c_contiguous and x.dtype == np.float32 else np.ascontiguousarray(x, dtype=np.float32)

    def new(name):
        return _array(work, name, x.shape)

    asinh = np.divide(x, np.float32(eq.i0), out=new("asinh"))    # numpy's SIMD arcsinh: 10x numba's here
    np.arcsinh(asinh, out=asinh)
    rho, slope = new("rho"), new("slope")      # ρ [V]; H = h'(I) [Ω]
    # the error solves (W + H)·e = −ρ; |Σ_i e| is all we need
    column_i, row_i, inv_slope_cols, rr, rhr = kernels.residual(
        x, asinh, np.ascontiguousarray(v_rows.T, dtype=float), eq.inv_g, eq.on, eq.r_row, eq.r_col, eq.i0, eq.v0,
        rho, slope)
    column_i, row_i = column_i.T, row_i.T
    if not (np.all(np.isfinite(column_i)) and np.all(np.isfinite(v_rows))):   # float64 sums of float32: finite iff x is
        return Estimate(np.full(column_i.shape, np.inf), np.inf, 0, column_i=column_i, row_i=row_i)
    # what CG leaves unresolved, |Σ_i δe_ij| for (W + H)·δe = r: by Cauchy–Schwarz in the A⁻¹ inner
    # product and A ≥ H, at most √(Σ_i 1/H_ij)·√(Σ r²/H), per column and vector. 1/H is a float32
    # division (2⁻²⁴ of itself), the products and sums are float64 (2⁻⁵³ per operation): the allowances
    # below, those of float32 sums of n positive terms (n·2⁻²⁴ of the sum), cover that with room to spare.
    column_weight = np.sqrt(inv_slope_cols * (1.0 + x.shape[0] * 2.0 ** -24))   # (cols, batch)
    goal = None if decide_at is None else decide_at * float(np.abs(column_i).max(initial=0.0))
    rounding = 1.0 + x.shape[0] * x.shape[1] * 2.0 ** -24

    def column_error(error_cols, r_h_r):
        return np.abs(error_cols) + column_weight * np.sqrt(rounding * r_h_r)

    def decided(error_cols, r_h_r):
        return goal is not None and float(column_error(error_cols, r_h_r).max(initial=0.0)) <= goal

    error_cols, rhr, iterations, solution = _conjugate_gradients(eq, slope, rho, rr, rhr, decided, new, correct)
    column_error_a = column_error(error_cols, rhr).T
    return Estimate(column_error_a, relative(column_error_a, column_i), iterations, solution, column_i, row_i)


_NO_SOLUTION = np.empty((0, 0, 0), np.float32)   # kernels.cg_update's x when the solution is not kept


def _conjugate_gradients(eq: Equations, slope, r, rr, rhr, decided, new, keep=False):
    """x ≈ A⁻¹·r for each vector of the batch (A = W + H symmetric positive definite, H = slope
    (rows, cols, batch)), r overwritten by the residual; rr, rhr: Σ r², Σ r²/H per vector. The
    column sums of x are kept (all the estimate needs), x itself only if keep. Stops at CG_RTOL or
    when decided(column sums, Σ r²/H) says so, checked before the first iteration too (then nothing
    else is computed); the diagonal preconditioner is 1/(H + diag W); new(name) gives a work array
    of r's shape (contents undefined). Every iteration is two compiled passes (kernels.cg_direction,
    kernels.cg_update). Returns (column sums (cols, batch), Σ r²/H, iterations, x, or None if not
    keep or decided before the first iteration)."""
    from circuitsim.surrogate import kernels  # numba: imported on first use (see there)

    x_cols = np.zeros(r.shape[1:])
    if decided(x_cols, rhr):
        return x_cols, rhr, 0, None
    x = new("solution") if keep else None     # set by the first iteration
    target = CG_RTOL * np.sqrt(rr)
    p, ap, beta, rz = new("p"), new("ap"), np.zeros_like(rr), None
    for k in range(1, CG_MAX_ITER + 1):
        pap, p_cols, rz_start = kernels.cg_direction(p, r, slope, eq.w_diag, eq.on, beta, k == 1, eq.r_row,
                                                     eq.r_col, ap)
        rz = rz_start if rz is None else rz
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        x_cols += alpha * p_cols
        rr, rhr, rz_next = kernels.cg_update(alpha, p, ap, r, slope, eq.w_diag, eq.on,
                                             _NO_SOLUTION if x is None else x, keep, k == 1)
        if np.all(np.sqrt(rr) <= target) or decided(x_cols, rhr):
            return x_cols, rhr, k, x
        beta = np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0)
        rz = rz_next
    return x_cols, rhr, CG_MAX_ITER, x
