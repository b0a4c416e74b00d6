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

from circuitsim.design import Crossbar
from circuitsim.surrogate.forms import col_path_ohm, row_path_ohm

CG_RTOL = 1e-2      # relative CG residual at which the first-order error is resolved; the rest is bounded
CG_MAX_ITER = 60


@dataclass(frozen=True, eq=False)
class Equations:
    """The input-independent parts of one design's exact cell equations (cached with the design).

    Arrays are (rows, cols, 1) (r_row transposed, see wire_drop): the check works on cell arrays
    laid out (rows, cols, batch), so that every sum along a line is a loop of contiguous vector
    adds over the batch (10-30x faster than np.cumsum along an inner axis at 64x64) and every
    per-cell constant broadcasts.
    """

    inv_g: np.ndarray      # 1 / device conductance [Ω], 0 where the cell is open
    on: np.ndarray         # (rows, cols) bool: cells that conduct (g > 0)
    r_row: np.ndarray      # row-wire segments [Ω], driver resistance in segment 0, transposed: (cols, rows | 1, 1)
    r_col: np.ndarray      # column-wire segments [Ω], sense resistance in the bottom one: (rows, cols | 1, 1)
    w_diag: np.ndarray     # diagonal of W [Ω]: the wire from the cell to driver plus to sense
    i0: float              # selector saturation current [A]
    v0: float              # selector voltage scale [V]

    @classmethod
    def of(cls, xb: Crossbar) -> Equations:
        on = xb.conductance > 0
        r_row, r_col = row_path_ohm(xb), col_path_ohm(xb)
        w_diag = np.cumsum(r_row, axis=1) + np.cumsum(r_col[::-1], axis=0)[::-1]
        inv_g = np.where(on, 1.0 / np.where(on, xb.conductance, 1.0), 0.0)
        return cls(inv_g[:, :, None].astype(np.float32), on, _per_segment(r_row.T), _per_segment(r_col),
                   w_diag[:, :, None].astype(np.float32), xb.selector.i0, xb.selector.v0)

    def wire_drop(self, cell_i: np.ndarray, out: np.ndarray | None = None, work: Workspace | None = None) -> np.ndarray:
        """W·I [V] (rows, cols, batch): row-wire drop from the driver plus column-wire rise to the sense node.

        Into `out` (cell_i unchanged); work gives the one more array it needs: the check runs this
        once per CG iteration. Every running sum is along the first axis, a loop of contiguous
        (n, batch) vector adds: the row sums work on a transposed copy, (cols, rows, batch).
        Sums along the middle axis add only `batch` contiguous numbers per step; with the copy
        and back this call took 3.5 ms instead of 5.3 at 256x256 with 25-32 vectors.
        """
        rows, cols, batch = cell_i.shape
        along_row = _array(work, "along_row", (cols, rows, batch))
        np.copyto(along_row, cell_i.transpose(1, 0, 2))
        _accumulate(along_row, along_row, reverse=True)                     # current through row segment j
        along_row *= self.r_row
        _accumulate(along_row, along_row)                                   # row-wire drop at cell j
        col = np.empty_like(cell_i) if out is None else out
        _accumulate(cell_i, col)                                            # current through column segment i
        col *= self.r_col
        _accumulate(col, col, reverse=True)                                 # column-wire rise at cell i
        col += along_row.transpose(1, 0, 2)
        return col

    def residual(self, v_rows: np.ndarray, cell_i: np.ndarray, work: Workspace | None = None) -> np.ndarray:
        """ρ [V] (rows, cols, batch): how far each cell's voltage is from what its current needs.

        v_rows (batch, rows); cell_i (rows, cols, batch); the result is work's "rho" array when work is given."""
        needed, scratch = _array(work, "needed", cell_i.shape), _array(work, "scratch", cell_i.shape)
        np.divide(cell_i, np.float32(self.i0), out=needed)
        np.arcsinh(needed, out=needed)
        needed *= np.float32(self.v0)
        needed += np.multiply(cell_i, self.inv_g, out=scratch)
        rho = self.wire_drop(cell_i, _array(work, "rho", cell_i.shape), work)
        np.subtract(v_rows.T[:, None, :], rho, out=rho)
        rho -= needed
        rho[~self.on] = 0.0
        return rho


def _per_segment(r_ohm: np.ndarray) -> np.ndarray:
    """(segments, lines) wire resistances [Ω] as a float32 (segments, lines, 1) factor of the running sums,
    (segments, 1, 1) where every line has the same segments (scalar r_row, r_driver...): a factor
    constant over the contiguous (lines, batch) block multiplies faster than one per line."""
    same = np.all(r_ohm == r_ohm[:, :1])
    return np.ascontiguousarray((r_ohm[:, :1] if same else r_ohm)[:, :, None], np.float32)


def _accumulate(x: np.ndarray, out: np.ndarray, reverse: bool = False) -> None:
    """Running sum of x along its first axis into out (may be x), from the far end if reverse."""
    first, step = (len(x) - 1, -1) if reverse else (0, 1)
    out[first] = x[first]
    for k in range(first + step, len(x) - 1 - first + step, step):
        np.add(out[k - step], x[k], out=out[k])


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
    column_i: np.ndarray | None = None     # (batch, cols) [A]: Σ_i cell_i of the answer checked, summed in float64


def relative(column_error_a: np.ndarray, column_i: np.ndarray) -> float:
    """Largest column error over the full scale of the batch, the calibration's error measure."""
    full_scale = float(np.abs(column_i).max(initial=0.0))
    worst = float(np.max(column_error_a, initial=0.0))
    return worst / full_scale if full_scale > 0 else (0.0 if worst == 0 else np.inf)


def estimate(eq: Equations, v_rows: np.ndarray, cell_i: np.ndarray, decide_at: float | None = None,
             correct: bool = False, work: Workspace | None = None) -> Estimate:
    """First-order error of the column currents Σ_i cell_i (see the module docstring).

    cell_i (batch, rows, cols); no copy when it is a view of a (rows, cols, batch) array (what
    forms.cell_currents returns). All in float32 (half the memory traffic of float64): its
    rounding, ~1e-7 V on the residual of ~1 V terms, is far below the residual of any answer
    near the 1 % bound (~1e-4 V), enough for an estimate that needs two digits.
    decide_at: a fraction of full scale; CG stops as soon as the estimate plus the bound on what
    it leaves unresolved is below it (the answer is then vouched for; the estimate reported is
    that upper value). correct: CG also keeps its solution, −e, in Estimate.correction; where
    the answer is not vouched for (CG ran to CG_RTOL), cell_i + correction is one Newton step of
    the exact equations from cell_i. work: reused work arrays (Workspace.take()), else fresh ones.
    """
    x = np.moveaxis(cell_i, 0, -1)
    x = x if x.flags.c_contiguous and x.dtype == np.float32 else np.ascontiguousarray(x, dtype=np.float32)
    column_i = x.sum(axis=0, dtype=float).T
    if not (np.all(np.isfinite(column_i)) and np.all(np.isfinite(v_rows))):
        return Estimate(np.full(column_i.shape, np.inf), np.inf, 0, column_i=column_i)
    rho = eq.residual(v_rows.astype(np.float32), x, work)   # the error solves (W + H)·e = −ρ; |Σ_i e| is all we need

    def new(name):
        return _array(work, name, x.shape)

    slope = np.multiply(x, x, out=new("slope"))                              # H = h'(I) [Ω]
    slope += np.float32(eq.i0 ** 2)
    np.sqrt(slope, out=slope)     # (np.hypot: 7x slower here)
    np.divide(np.float32(eq.v0), slope, out=slope)
    slope += eq.inv_g
    off = None if eq.on.all() else ~eq.on
    inv_slope = np.divide(np.float32(1.0), slope, out=new("inv_slope"))
    if off is not None:
        inv_slope[off] = 0.0
    # what CG leaves unresolved, |Σ_i δe_ij| for (W + H)·δe = r: by Cauchy–Schwarz in the A⁻¹ inner
    # product and A ≥ H, at most √(Σ_i 1/H_ij)·√(Σ r²/H), per column and vector
    # (float32 sums of positive terms: a sum of n errs by less than n·2⁻²⁴ of itself, allowed for)
    column_weight = np.sqrt(inv_slope.sum(axis=0).astype(float) * (1.0 + x.shape[0] * 2.0 ** -24))   # (cols, batch)
    goal = None if decide_at is None else decide_at * float(np.abs(column_i).max(initial=0.0))
    rounding = 1.0 + x.shape[0] * x.shape[1] * 2.0 ** -24

    def precondition():
        out = np.add(slope, eq.w_diag, out=new("precondition"))
        np.divide(np.float32(1.0), out, out=out)
        if off is not None:
            out[off] = 0.0
        return out

    scratch = new("scratch")

    def apply(p, out):
        eq.wire_drop(p, out, work)
        out += np.multiply(slope, p, out=scratch)
        if off is not None:
            out[off] = 0.0
        return out

    def column_error(error_cols, r):
        unresolved = np.sqrt(rounding * np.einsum("ijb,ijb,ijb->b", r, r, inv_slope).astype(float))
        return np.abs(error_cols) + column_weight * unresolved

    def decided(error_cols, r):
        return goal is not None and float(column_error(error_cols, r).max(initial=0.0)) <= goal

    error_cols, r, iterations, solution = _conjugate_gradients(apply, rho, precondition, decided, new, correct)
    column_error_a = column_error(error_cols, r).T
    return Estimate(column_error_a, relative(column_error_a, column_i), iterations, solution, column_i)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-vector inner products of (rows, cols, batch) arrays, summed in float32 (3x faster than
    in float64; relative error below cells·2⁻²⁴, 4e-3 at 256x256), returned as float64."""
    return np.einsum("ijb,ijb->b", a, b).astype(float)


def _conjugate_gradients(apply, r, make_precondition, decided, new, keep=False):
    """x ≈ A⁻¹·r for each vector of the batch (A symmetric positive definite, apply(x, out) = A·x),
    r (rows, cols, batch) overwritten by the residual. The column sums of x are kept (all the
    estimate needs: one pass fewer per iteration), x itself only if keep. Stops at CG_RTOL or
    when decided(column sums, residual) says so, checked before the first iteration too (then
    nothing else is computed); make_precondition() gives the diagonal preconditioner, new(name)
    a work array of r's shape (contents undefined). Returns
    (column sums (cols, batch), residual, iterations, x or None)."""
    x_cols = np.zeros(r.shape[1:])
    x = new("solution") if keep else None     # set by the first iteration
    if decided(x_cols, r):
        if keep:
            x.fill(0.0)
        return x_cols, r, 0, x
    precondition = make_precondition()
    target = CG_RTOL * np.sqrt(_dot(r, r))
    p = np.multiply(precondition, r, out=new("p"))
    rz, ap, z = _dot(r, p), new("ap"), new("z")
    for k in range(1, CG_MAX_ITER + 1):
        apply(p, ap)
        pap = _dot(p, ap)
        alpha = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
        x_cols += alpha * p.sum(axis=0, dtype=float)
        if keep and k == 1:
            np.multiply(alpha.astype(r.dtype), p, out=x)
        elif keep:
            x += np.multiply(alpha.astype(r.dtype), p, out=z)     # z is free until the preconditioning below
        ap *= alpha.astype(r.dtype)
        r -= ap
        if np.all(np.sqrt(_dot(r, r)) <= target) or decided(x_cols, r):
            return x_cols, r, k, x
        np.multiply(precondition, r, out=z)
        rz_next = _dot(r, z)
        p *= np.divide(rz_next, rz, out=np.zeros_like(rz), where=rz > 0).astype(r.dtype)
        p += z
        rz = rz_next
    return x_cols, r, CG_MAX_ITER, x
