"""Compiled (numba) passes over the surrogate's (rows, cols, batch) float32 cell arrays.

At 64² to 256² with batches of 25-100 vectors, numpy's way through these arrays (one temporary
and one memory pass per operation, Python loops for the running sums along the lines) cost
several times the arithmetic. Each kernel here does in one or two passes what took five to
fifteen: the low-rank form's cell currents with their column feedback (forms), the residual of
the exact equations and the conjugate-gradient passes of the check (trust). The cell arrays
stay float32 (half the memory traffic); every sum is taken in float64, at least as exact as
the float32 sums whose rounding the check allows for. Transcendentals (exp, arcsinh) stay in
numpy: its SIMD versions are ~10x faster than numba's scalar calls on this machine.

Imported on first use (numba costs 0.2 s to import); compiled code is cached beside this file.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# ---- the low-rank form ------------------------------------------------------------------


BASIS = 7   # forms.N_BASIS: the sums over the basis are written out term by term (3x faster than a loop)
COL_BLOCK = 8   # columns lowrank_cells takes together: their row-line terms and sums stay in cache


@njit(cache=True, error_model="numpy")
def _row_line(coef, terms, i, first, last, out):
    """out[i, c − first, b] = Σ_k coef[i, c, k]·terms[i, k, b] for the columns c of [first, last)."""
    for c in range(first, last):
        k0, k1, k2, k3 = coef[i, c, 0], coef[i, c, 1], coef[i, c, 2], coef[i, c, 3]
        k4, k5, k6 = coef[i, c, 4], coef[i, c, 5], coef[i, c, 6]
        for b in range(out.shape[2]):
            out[i, c - first, b] = (k0 * terms[i, 0, b] + k1 * terms[i, 1, b] + k2 * terms[i, 2, b]
                                    + k3 * terms[i, 3, b] + k4 * terms[i, 4, b] + k5 * terms[i, 5, b]
                                    + k6 * terms[i, 6, b])


@njit(cache=True, error_model="numpy")
def lowrank_cells(coef, phi, dphi, w0, w1, lam0, lam1, out):
    """Cell currents [A] of the low-rank form into out (rows, cols, batch) float32; returns the
    column currents (cols, batch) of the same solution, float64.

    coef (rows, cols, BASIS): the row lines' coefficients; phi, dphi (rows, BASIS, batch): the
    voltage basis and its slope at each row voltage; w0, w1 (rows, cols): the two leading
    eigenvectors of each column's wire kernel, lam0, lam1 (cols,) their eigenvalues. Per column:
    the row-line currents I0 and slopes d, the sums b_p = Σ_i w_p·I0, a_p = Σ_i w_p·d,
    M_pq = Σ_i w_p·w_q·d, the 2×2 system (1 + M·Λ)·x = b, and I = I0 − d·Σ_p λ_p·w_p·x_p
    (forms._prepare_lowrank). COL_BLOCK columns at a time, so that their I0, d and sums stay in
    cache; inner loops of one or a few stores each, which LLVM vectorizes (more arrays per loop
    need more run-time overlap checks than it makes).
    """
    rows, cols, basis = coef.shape
    if basis != BASIS:
        raise ValueError("lowrank_cells is written for a voltage basis of 7 terms")
    batch = phi.shape[2]
    cell, d = np.empty((rows, COL_BLOCK, batch)), np.empty((rows, COL_BLOCK, batch))
    s = np.empty((8, COL_BLOCK, batch))   # Σ_i I0, b0, b1, a0, a1, m00, m01, m11
    columns = np.empty((cols, batch))
    for first in range(0, cols, COL_BLOCK):
        last = min(first + COL_BLOCK, cols)
        s[:] = 0.0
        for i in range(rows):
            _row_line(coef, phi, i, first, last, cell)
            _row_line(coef, dphi, i, first, last, d)
            for c in range(last - first):
                u, v = w0[i, first + c], w1[i, first + c]
                for b in range(batch):
                    s[0, c, b] += cell[i, c, b]
                    s[1, c, b] += u * cell[i, c, b]
                    s[2, c, b] += v * cell[i, c, b]
                for b in range(batch):
                    s[3, c, b] += u * d[i, c, b]
                    s[4, c, b] += v * d[i, c, b]
                uu, uv, vv = u * u, u * v, v * v
                for b in range(batch):
                    s[5, c, b] += uu * d[i, c, b]
                    s[6, c, b] += uv * d[i, c, b]
                    s[7, c, b] += vv * d[i, c, b]
        for c in range(last - first):
            l0, l1 = lam0[first + c], lam1[first + c]
            for b in range(batch):
                s00, s01, s10, s11 = 1.0 + s[5, c, b] * l0, s[6, c, b] * l1, s[6, c, b] * l0, 1.0 + s[7, c, b] * l1
                det = s00 * s11 - s01 * s10
                x0 = (s11 * s[1, c, b] - s01 * s[2, c, b]) / det
                x1 = (s00 * s[2, c, b] - s10 * s[1, c, b]) / det
                s[1, c, b], s[2, c, b] = l0 * x0, l1 * x1          # the rise per unit slope is Σ_p w_p·λ_p·x_p
                columns[first + c, b] = s[0, c, b] - s[3, c, b] * s[1, c, b] - s[4, c, b] * s[2, c, b]
        for i in range(rows):
            for c in range(last - first):
                u, v = w0[i, first + c], w1[i, first + c]
                for b in range(batch):
                    out[i, first + c, b] = cell[i, c, b] - d[i, c, b] * (u * s[1, c, b] + v * s[2, c, b])
    return columns


# ---- the wires: W·x by running sums -----------------------------------------------------
# A pass over the rows from the last to the first; the state is the current through each column
# segment below the row (`through`, starting from the column totals) and the column-wire rise
# above it (`rise`), both (cols, batch), and along the row the current left in the row wire
# (`left`, starting from the row total) and its drop (`drop`), both (batch,). All float64.


@njit(cache=True, error_model="numpy")
def _line_totals(x, through, row_total):
    """Σ_i x into through (cols, batch) and Σ_j x into row_total (rows, batch)."""
    rows, cols, batch = x.shape
    through[:] = 0.0
    row_total[:] = 0.0
    for i in range(rows):
        for j in range(cols):
            for b in range(batch):
                row_total[i, b] += x[i, j, b]
                through[j, b] += x[i, j, b]


@njit(cache=True, error_model="numpy")
def _wire_row(x, i, r_row, r_col, through, rise, left, drop, row_drop):
    """Advance the running sums over row i (rows taken from the last): W·x [V] at its cells is then
    row_drop + rise (cols, batch): the row-wire drop from the driver plus the column-wire rise to
    the sense node. left: the row's total current on entry; drop: scratch (batch,)."""
    cols, batch = rise.shape
    drop[:] = 0.0
    for j in range(cols):
        rc, rr = r_col[i, j], r_row[i, j]
        for b in range(batch):             # column segment i carries the current of the cells above and at i
            rise[j, b] += rc * through[j, b]
            through[j, b] -= x[i, j, b]
        for b in range(batch):             # row segment j carries the current of the cells at and beyond j
            drop[b] += rr * left[b]
            left[b] -= x[i, j, b]
            row_drop[j, b] = drop[b]


@njit(cache=True, error_model="numpy")
def _wire_state(x):
    """(through, row_total, rise, row_drop, drop) for the running sums over x (rows, cols, batch)."""
    rows, cols, batch = x.shape
    return (np.empty((cols, batch)), np.empty((rows, batch)), np.zeros((cols, batch)), np.empty((cols, batch)),
            np.empty(batch))


@njit(cache=True, error_model="numpy")
def wire_drop(x, r_row, r_col, out):
    """W·x [V] into out (rows, cols, batch); r_row, r_col (rows, cols) [Ω]."""
    rows, cols, batch = x.shape
    through, row_total, rise, row_drop, drop = _wire_state(x)
    _line_totals(x, through, row_total)
    for i in range(rows - 1, -1, -1):
        _wire_row(x, i, r_row, r_col, through, rise, row_total[i], drop, row_drop)
        for j in range(cols):
            for b in range(batch):
                out[i, j, b] = row_drop[j, b] + rise[j, b]


# ---- the check: residual and conjugate gradients ----------------------------------------
# Inner loops along the batch, each with one to three stores: LLVM vectorizes those (with more
# arrays per loop it needs more run-time overlap checks than it makes, and runs them scalar).
# 1/H and the preconditioner 1/(H + diag W) are computed where used, in float32, not stored:
# a division costs less than a pass over memory. `on` (rows, cols) is 1.0 where a cell conducts,
# 0.0 where it is open: open cells have no equation (ρ, the CG vectors and A·p are 0 there).


@njit(cache=True, error_model="numpy")
def residual(x, asinh, v_rows, inv_g, on, r_row, r_col, i0, v0, rho, slope):
    """The exact equations at cell currents x (rows, cols, batch) float32.

    asinh: arcsinh(x/i0) (float32, from numpy); v_rows (rows, batch) [V]; inv_g, on, r_row, r_col
    (rows, cols). Writes ρ = v_rows − W·x − h(x) [V] and H = h'(x) [Ω] (float32). Returns column
    currents Σ_i x (cols, batch), row currents Σ_j x (rows, batch), Σ_i 1/H (cols, batch), and per
    vector Σ ρ² and Σ ρ²/H of the float32 ρ, all summed in float64.
    """
    rows, cols, batch = x.shape
    through, row_total, rise, row_drop, drop = _wire_state(x)
    _line_totals(x, through, row_total)
    column_i, row_i = through.copy(), row_total.copy()
    weight, rr, rhr = np.zeros((cols, batch)), np.zeros(batch), np.zeros(batch)
    i0_sq, v0_32, one = np.float32(i0 * i0), np.float32(v0), np.float32(1.0)
    for i in range(rows - 1, -1, -1):
        _wire_row(x, i, r_row, r_col, through, rise, row_total[i], drop, row_drop)
        for j in range(cols):
            g_inv, conducts = inv_g[i, j], on[i, j]
            g_inv_32, on_32 = np.float32(g_inv), np.float32(conducts)
            for b in range(batch):     # float32: 4x faster division and root
                h_slope = v0_32 / np.sqrt(x[i, j, b] * x[i, j, b] + i0_sq) + g_inv_32
                slope[i, j, b] = h_slope
                weight[j, b] += on_32 / h_slope
            for b in range(batch):
                rho[i, j, b] = conducts * (v_rows[i, b] - row_drop[j, b] - rise[j, b]
                                           - (x[i, j, b] * g_inv + v0 * asinh[i, j, b]))
            for b in range(batch):
                r = np.float64(rho[i, j, b])
                rr[b] += r * r
                rhr[b] += r * r * (on_32 * (one / slope[i, j, b]))
    return column_i, row_i, weight, rr, rhr


@njit(cache=True, error_model="numpy")
def cg_direction(p, r, slope, w_diag, on, beta, first, r_row, r_col, ap):
    """p ← z + β·p (p ← z when first), z = r/(H + diag W), then ap = (W + H)·p (0 where open).

    Returns Σ p·ap per vector, the column sums of p (cols, batch), and when first Σ r·z per vector
    (CG's starting value; later ones come from cg_update), else zeros; all float64."""
    rows, cols, batch = p.shape
    through, row_total, rise, row_drop, drop = _wire_state(p)
    through[:] = 0.0
    row_total[:] = 0.0
    rz = np.zeros(batch)
    for i in range(rows):       # the new direction and its line totals in one pass
        for j in range(cols):
            w_32, on_32 = np.float32(w_diag[i, j]), np.float32(on[i, j])
            if first:
                for b in range(batch):
                    p[i, j, b] = on_32 * r[i, j, b] / (slope[i, j, b] + w_32)
                for b in range(batch):
                    rz[b] += np.float64(r[i, j, b]) * p[i, j, b]
            else:
                for b in range(batch):
                    p[i, j, b] = on_32 * r[i, j, b] / (slope[i, j, b] + w_32) + beta[b] * p[i, j, b]
            for b in range(batch):
                row_total[i, b] += p[i, j, b]
                through[j, b] += p[i, j, b]
    p_cols = through.copy()
    pap = np.zeros(batch)
    for i in range(rows - 1, -1, -1):
        _wire_row(p, i, r_row, r_col, through, rise, row_total[i], drop, row_drop)
        for j in range(cols):
            conducts = on[i, j]
            for b in range(batch):
                ap[i, j, b] = conducts * (row_drop[j, b] + rise[j, b] + slope[i, j, b] * p[i, j, b])
            for b in range(batch):
                pap[b] += p[i, j, b] * np.float64(ap[i, j, b])
    return pap, p_cols, rz


@njit(cache=True, error_model="numpy")
def cg_update(alpha, p, ap, r, slope, w_diag, on, x, keep, first):
    """r ← r − α·ap, and x ← x + α·p (x ← α·p when first) if keep.

    Returns per vector Σ r², Σ r²/H and Σ r·z (z = r/(H + diag W)) of the new float32 r, float64."""
    rows, cols, batch = r.shape
    rr, rhr, rz = np.zeros(batch), np.zeros(batch), np.zeros(batch)
    one = np.float32(1.0)
    for i in range(rows):
        for j in range(cols):
            w_32, on_32 = np.float32(w_diag[i, j]), np.float32(on[i, j])
            if keep and first:
                for b in range(batch):
                    x[i, j, b] = alpha[b] * p[i, j, b]
            elif keep:
                for b in range(batch):
                    x[i, j, b] += alpha[b] * p[i, j, b]
            for b in range(batch):
                r[i, j, b] -= alpha[b] * ap[i, j, b]
            for b in range(batch):
                rn = np.float64(r[i, j, b])
                rr[b] += rn * rn
                rhr[b] += rn * rn * (on_32 * (one / slope[i, j, b]))
            for b in range(batch):
                rz[b] += np.float64(r[i, j, b]) * (on_32 * r[i, j, b] / (slope[i, j, b] + w_32))
    return rr, rhr, rz
