"""Reduced crossbar models behind engine="surrogate": cell physics exact, wires reduced.

Every form starts from the exact I-V of one 1S1R cell (conductance G in series with the
sinh selector, solved per cell) and differs in how it treats the wire resistance:

- "ideal": I = G·V, the textbook crossbar (no selector, no wires); the baseline to beat.
- "chen": A. Chen's first-order line-resistance model (IEEE TED 60(4) 2013, MODELS.md):
  each cell sees its own wire path r_row·(j+1) + r_col·(m−i) in series, scaled by fitted
  sharing factors that stand for the current of the other cells on the same lines.
- "dmr": diagonal matrix regression (Y. Liao et al., IEEE TCAD 40(8) 2021): W = diag(a)·G·diag(b),
  cell (i, j) keeps the fraction a_i·b_j of its row voltage; a, b in closed form from the line
  resistances and line-average conductances (open_end_fractions), two fitted wire scales.
- "alphabeta": the αβ-matrix correction W = α∘G∘β: the same closed form per cell, α from the
  cell's own column and β from its own row with their actual conductances, not averages.
  Both closed forms as written out in the open comparison of crossbar parasitic models
  github.com/alambertini01/Crossbar_Models_Comparison (dmr_model, alpha_beta_model), here
  with the wiring of DESIGN.md (driver and sense segments included, per-segment resistances).
- "relax": CrossSim-style relaxation of the wire drops: cell currents give the exact line
  voltages through cumulative sums; a fixed number of damped sweeps (damping fitted).
- "lowrank": row lines solved exactly per cell (they depend on their own driver only),
  column-wire rise as a low-rank self-consistent feedback (eigenvectors of each column's
  resistance kernel), per cell and vector in one compiled pass (surrogate.kernels).

All cell functions of a row voltage u are expanded on the odd basis u and
sinh(s·u/v0) (SINH_SCALES), so a column current of the one-matmul forms is φ(V) @ C.
Assumptions: row drivers at the left, sense nodes at the bottom held at 0 V, no floating
lines, every cell's selector the same SinhSelector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.design import Crossbar, col_path_ohm, row_path_ohm

SINH_SCALES = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)   # evenly spaced: exp(s·x) by repeated products
N_BASIS = 1 + len(SINH_SCALES)
FORMS = ("ideal", "chen", "dmr", "alphabeta", "lowrank", "relax")   # cheapest per input vector first
ONE_MATMUL = ("chen", "dmr", "alphabeta")   # forms whose cells each see a fixed fraction of their row voltage
CELL_NEWTON_ITERS = 40
SHOOT_POINTS = 64


# ---- one cell ---------------------------------------------------------------------------

def selector_voltage(v_cell: np.ndarray, g: np.ndarray, i0: float, v0: float) -> np.ndarray:
    """Voltage [V] across the selector of a cell (g [S] in series with i0·sinh(V/v0)) at v_cell [V].

    Solves Vs + i0·sinh(Vs/v0)/g = |v| by Newton from an upper bound of the root, the smaller of
    |v| and v0·asinh(g·|v|/i0) (the cell carries at most g·|v|): the function is convex and
    increasing, so the iterates fall monotonically onto the root.
    """
    a = np.abs(v_cell)
    k = i0 / np.where(g > 0, g, np.inf)
    vs = np.minimum(a, v0 * np.arcsinh(a * g / i0))
    for _ in range(CELL_NEWTON_ITERS):
        x = np.minimum(vs / v0, 80.0)
        step = (vs + k * np.sinh(x) - a) / (1.0 + k / v0 * np.cosh(x))
        vs = vs - step
        if np.max(np.abs(step), initial=0.0) < 1e-13:
            break
    return np.sign(v_cell) * np.where(g > 0, vs, 0.0)


def cell_current(v_cell: np.ndarray, g: np.ndarray, i0: float, v0: float) -> np.ndarray:
    """Exact current [A] of a 1S1R cell (0 for an open cell, g == 0)."""
    vs = selector_voltage(v_cell, g, i0, v0)
    return np.where(g > 0, i0 * np.sinh(np.clip(vs / v0, -80, 80)), 0.0)


def chord_conductance(g: np.ndarray, v_ref: float, i0: float, v0: float) -> np.ndarray:
    """I(v_ref)/v_ref [S] of each 1S1R cell: the linear load that carries the cell's current at v_ref [V]."""
    return cell_current(np.full(np.shape(g), v_ref), g, i0, v0) / v_ref


# ---- the voltage basis ------------------------------------------------------------------

@dataclass(frozen=True)
class Basis:
    """Odd basis φ_k(u) = u/v_max, sinh(s_k·u/v0)/sinh(s_k·v_max/v0), normalised to 1 at v_max."""

    v0: float
    v_max: float

    def _norms(self) -> np.ndarray:
        return np.sinh(np.asarray(SINH_SCALES) * self.v_max / self.v0)

    def values(self, u: np.ndarray) -> np.ndarray:
        """φ(u) with the basis index last: shape u.shape + (N_BASIS,) (for fitting)."""
        u = np.asarray(u)[..., None]
        return np.concatenate([u / self.v_max, np.sinh(u * np.asarray(SINH_SCALES) / self.v0) / self._norms()],
                              axis=-1)

    def terms(self, v: np.ndarray, with_slopes: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """φ(v) and dφ/du(v) (None unless with_slopes) of a 2-D v (n, m) as (n, N_BASIS, m) arrays.

        The sinh terms come from two exponentials and running products (the scales are
        evenly spaced), the one cost per vector besides the form's sums.
        """
        n, m = v.shape
        values, slopes = np.empty((n, N_BASIS, m)), np.empty((n, N_BASIS, m)) if with_slopes else None
        values[:, 0] = v / self.v_max
        if with_slopes:
            slopes[:, 0] = 1.0 / self.v_max
        x = np.clip(v / self.v0, -80.0, 80.0)
        up = np.exp(SINH_SCALES[0] * x)
        step = np.exp((SINH_SCALES[1] - SINH_SCALES[0]) * x)
        down, step_down = 1.0 / up, 1.0 / step
        for k, (s, norm) in enumerate(zip(SINH_SCALES, self._norms()), start=1):
            values[:, k] = (up - down) * (0.5 / norm)
            if with_slopes:
                slopes[:, k] = (up + down) * (0.5 * s / (self.v0 * norm))
            up *= step
            down *= step_down
        return values, slopes

    def features(self, v_rows: np.ndarray) -> np.ndarray:
        """φ(V) as a (batch, N_BASIS·rows) matmul operand, basis-major."""
        return self.terms(v_rows, with_slopes=False)[0].reshape(len(v_rows), -1)


def fit_coefficients(basis: Basis, u: np.ndarray, currents: np.ndarray) -> np.ndarray:
    """Least-squares coefficients C (N_BASIS, rows, cols) with currents[r, s, c] ≈ Σ_k φ_k(u[r, s])·C[k, r, c]."""
    phi = basis.values(u)                                    # (rows, samples, K)
    coef = np.linalg.pinv(phi) @ currents                    # (rows, K, cols)
    return np.moveaxis(coef, 1, 0)


def as_weights(coef: np.ndarray) -> np.ndarray:
    """(K, rows, cols) coefficients -> (K·rows, cols) matmul weights, matching Basis.features."""
    return coef.reshape(-1, coef.shape[-1])


# ---- lines ------------------------------------------------------------------------------

def row_wire_volts(v_rows: np.ndarray, cell_i: np.ndarray, r_row: np.ndarray) -> np.ndarray:
    """Row-wire voltage at each cell (batch, rows, cols) from cell currents: exact for a driven chain."""
    through = np.cumsum(cell_i[..., ::-1], axis=-1)[..., ::-1]      # current in segment j
    return v_rows[..., None] - np.cumsum(r_row * through, axis=-1)


def col_wire_volts(cell_i: np.ndarray, r_col: np.ndarray) -> np.ndarray:
    """Column-wire voltage at each cell (batch, rows, cols) from cell currents, sense nodes at 0 V."""
    through = np.cumsum(cell_i, axis=-2)                              # current in segment i (downwards)
    return np.cumsum((r_col * through)[..., ::-1, :], axis=-2)[..., ::-1, :]


def shoot_rows(xb: Crossbar, r_row: np.ndarray, v_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact row lines with grounded columns, by shooting from the open far end.

    For far-end voltages x in (0, v_max] walk to the driver; returns the driver voltages
    u (rows, samples) and the cell currents (rows, samples, cols). u >= x, so the samples
    cover (0, v_max].
    """
    rows, cols = xb.shape
    sel = xb.selector
    x = np.linspace(0.0, v_max, SHOOT_POINTS + 1)[1:]
    node = np.broadcast_to(x, (rows, SHOOT_POINTS)).copy()
    currents = np.zeros((rows, SHOOT_POINTS, cols))
    through = np.zeros((rows, SHOOT_POINTS))
    for j in range(cols - 1, -1, -1):
        currents[:, :, j] = cell_current(node, xb.conductance[:, j:j + 1], sel.i0, sel.v0)
        through += currents[:, :, j]
        node = node + r_row[:, j:j + 1] * through
    return node, currents


def open_end_fractions(g_row: np.ndarray, r_row: np.ndarray, g_col: np.ndarray,
                       r_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form fractions (b, a) of a row's drive left at each cell by the row wire (b) and the column wire (a).

    Each line is taken alone with its cells as linear loads g [S] (the row's: g_row, r_row [Ω];
    the column's: g_col, r_col), all at the same voltage. With d the wire drop at each cell for
    unit currents g (row_wire_volts / col_wire_volts) and d_far the drop at the line's open end,
    referring the loads to the open end (each draws g·x, x the open-end voltage) gives exactly
    fraction = 1 − d / (1 + d_far): Liao et al.'s DMR closed form, always in (0, 1]. Solving
    the coupled linear line equations to their fixed point instead gave the same held-out error
    (1.349 % of full scale, alphabeta): what these forms miss is that the drops follow the input.
    Shapes broadcast: line averages with keepdims give DMR's vectors, full arrays the αβ matrices.
    """
    d_row = -row_wire_volts(np.zeros(g_row.shape[:-1]), g_row, r_row)
    d_col = col_wire_volts(g_col, r_col)
    return 1.0 - d_row / (1.0 + d_row[..., -1:]), 1.0 - d_col / (1.0 + d_col[..., :1, :])


def column_kernel(r_col: np.ndarray) -> np.ndarray:
    """K (cols, rows, rows): column-wire voltage at cell i per unit current injected at cell i'.

    K[j, i, i'] = Σ_{k >= max(i, i')} r_col[k, j] (the shared stretch of wire to the sense node).
    """
    rows = r_col.shape[0]
    tail = np.cumsum(r_col[::-1], axis=0)[::-1]                       # Σ_{k>=i} r[k, j]
    idx = np.maximum.outer(np.arange(rows), np.arange(rows))
    return np.moveaxis(tail[idx], -1, 0)


# ---- prepared designs -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Prepared:
    """A design made ready for fast batches: form name, basis and the arrays that form needs."""

    form: str
    basis: Basis | None
    arrays: dict


def prepare(xb: Crossbar, form: str, params: dict, v_max: float) -> Prepared:
    """Precompute the input-independent part of `form` for design xb (params: fitted scalars)."""
    if form == "ideal":
        return Prepared(form, None, {"g": xb.conductance})
    sel = xb.selector
    basis = Basis(sel.v0, v_max)
    if form == "relax":
        return Prepared(form, basis, {"g": xb.conductance, "r_row": row_path_ohm(xb), "r_col": col_path_ohm(xb),
                                      "omega": params["omega"], "sweeps": int(params["sweeps"]), "i0": sel.i0})
    if form == "chen":
        rows, cols = xb.shape
        # a line's other cells share its wire: the sharing factor grows with the line length
        share_row = 1.0 + params["share_row_per_cell"] * (cols - 1)
        share_col = 1.0 + params["share_col_per_cell"] * (rows - 1)
        path = (share_row * np.cumsum(row_path_ohm(xb), axis=1)
                + share_col * np.cumsum(col_path_ohm(xb)[::-1], axis=0)[::-1])
        g_eff = np.where(xb.conductance > 0, 1.0 / (1.0 / np.where(xb.conductance > 0, xb.conductance, 1.0) + path),
                         0.0)
        return _one_matmul(form, xb, basis, v_max, g_eff)
    if form in ("dmr", "alphabeta"):
        return _one_matmul(form, xb, basis, v_max, _through_wires(xb, form, params, v_max))
    if form == "lowrank":
        return _prepare_lowrank(xb, basis, params, v_max)
    raise ValueError(f"unknown surrogate form {form!r}; choose one of {FORMS}")


def _one_matmul(form: str, xb: Crossbar, basis: Basis, v_max: float, g: np.ndarray) -> Prepared:
    """Weights of a form whose cell (i, j) is its selector in series with g[i, j] [S], driven by its row voltage."""
    sel = xb.selector
    u = np.linspace(0.0, v_max, SHOOT_POINTS + 1)[1:]
    i = cell_current(u[None, :, None], g[:, None, :], sel.i0, sel.v0)
    coef = fit_coefficients(basis, np.broadcast_to(u, (len(g), len(u))), i)
    return Prepared(form, basis, {"coef": coef, "w": as_weights(coef), "coef_rows": _by_row(coef)})


def _through_wires(xb: Crossbar, form: str, params: dict, v_max: float) -> np.ndarray:
    """Device conductance [S] in series with the wire each cell sees: "dmr" (line averages) or "alphabeta" (per cell).

    The loads of open_end_fractions are the cells' chord conductances g_c at v_max; the wire
    resistances are scaled by the fitted scale_row / scale_col, which stand for the input
    statistics (the other rows of a column are not all driven as hard as the cell's own row)
    and for the open-end referencing. The fraction f = a·b is kept as the series resistance
    (1/f − 1)/g_c rather than as a fixed share of the row voltage, so that a nonlinear cell
    limits its own wire drop; for a linear cell both are W = diag(a)·G·diag(b) (dmr) or
    α∘G∘β (alphabeta). Measured on the default calibration data: the fixed share had a
    held-out max error of 2.4 % of full scale even with a third fitted scalar (the chord
    voltage), the series resistance 1.35 % with these two.
    """
    sel = xb.selector
    g_dev = xb.conductance
    g = chord_conductance(g_dev, v_max, sel.i0, sel.v0)
    r_row, r_col = params["scale_row"] * row_path_ohm(xb), params["scale_col"] * col_path_ohm(xb)
    if form == "dmr":   # b per column from the mean row, a per row from the mean column
        b, a = open_end_fractions(g.mean(axis=0, keepdims=True), r_row.mean(axis=0, keepdims=True),
                                  g.mean(axis=1, keepdims=True), r_col.mean(axis=1, keepdims=True))
    else:
        b, a = open_end_fractions(g, r_row, g, r_col)
    on = g_dev > 0
    r_wire = (1.0 / (a * b) - 1.0) / np.where(on, g, 1.0)
    return np.where(on, 1.0 / (1.0 / np.where(on, g_dev, 1.0) + r_wire), 0.0)


def _prepare_lowrank(xb: Crossbar, basis: Basis, params: dict, v_max: float) -> Prepared:
    """Row-line coefficients and the rank-2 column feedback terms (see kernels.lowrank_cells)."""
    u, currents = shoot_rows(xb, params["scale_row"] * row_path_ohm(xb), v_max)
    coef = fit_coefficients(basis, u, currents)                          # (K, rows, cols)
    # columns with the same wire share one eigendecomposition (a scalar r_col: one for all)
    r_unique, which = np.unique(params["scale_col"] * col_path_ohm(xb), axis=1, return_inverse=True)
    lam, vec = np.linalg.eigh(column_kernel(r_unique))
    lam, vec = lam[which, :-3:-1].T, vec[which][:, :, :-3:-1]            # (2, cols), (cols, rows, 2)
    return Prepared("lowrank", basis, {"lam": lam.copy(), "coef": coef, "coef_rows": _by_row(coef),
                                       "eigvec": np.stack([vec[:, :, p].T for p in range(2)])})   # (2, rows, cols)


# ---- evaluation -------------------------------------------------------------------------

def column_currents(prep: Prepared, v_rows: np.ndarray) -> np.ndarray:
    """Column currents [A] (batch, cols) for row voltages (batch, rows)."""
    a = prep.arrays
    if prep.form == "ideal":
        return v_rows @ a["g"]
    if prep.form in ONE_MATMUL:
        return prep.basis.features(v_rows) @ a["w"]
    if prep.form == "relax":
        return relax_cells(prep, v_rows).sum(axis=1)
    rows, cols = a["coef"].shape[1:]
    step = max(1, SCRATCH_CELLS // (rows * cols))
    cells = np.empty((rows, cols, min(step, len(v_rows))), np.float32)     # their cell currents, not kept
    return np.concatenate([_lowrank(prep, v, cells[:, :, :len(v)]).T
                           for v in np.split(v_rows, range(step, len(v_rows), step))])


SCRATCH_CELLS = 1 << 21   # column_currents of "lowrank" works through the batch in chunks of this many cells


def cell_currents(prep: Prepared, v_rows: np.ndarray, dtype=np.float64, work=None) -> np.ndarray:
    """Cell currents [A] (batch, rows, cols) of the form's solution; they sum to column_currents.

    What the a-posteriori check (circuitsim.surrogate.trust) puts into the exact equations. Except
    for "relax", a view of a (rows, cols, batch) array of `dtype`: the layout the check works in.
    The check runs in float32 (half the memory traffic).
    work: reusable arrays (trust.Workspace) for the "lowrank" form; the answer is then one of
    them, valid until the next call with the same work.
    """
    return next(cell_current_chunks(prep, v_rows, len(v_rows), dtype, work))[1]


def cell_current_chunks(prep: Prepared, v_rows: np.ndarray, chunk: int, dtype=np.float64, work=None):
    """(first vector, cell_currents of v_rows[first:first + chunk]) for consecutive chunks of the batch;
    with work, each chunk's array is the same work array (valid until the next chunk)."""
    for lo in range(0, len(v_rows), chunk):
        yield lo, _cells(prep, v_rows[lo:lo + chunk], dtype, work)


def _cells(prep: Prepared, v_rows: np.ndarray, dtype, work) -> np.ndarray:
    """cell_currents of one chunk."""
    a = prep.arrays
    if prep.form == "relax":
        return relax_cells(prep, v_rows).astype(dtype, copy=False)
    if prep.form == "ideal":
        return np.moveaxis(a["g"].astype(dtype)[:, :, None] * v_rows.T.astype(dtype)[:, None, :], -1, 0)
    if prep.form in ONE_MATMUL:    # Σ_k coef[r, c, k]·φ_k(V_r): one batched matmul, rows × (cols, K) @ (K, batch)
        phi = prep.basis.terms(v_rows.T, with_slopes=False)[0].astype(dtype)
        return np.moveaxis(np.matmul(a["coef_rows"][np.dtype(dtype)], phi), -1, 0)
    shape = a["coef"].shape[1:] + (len(v_rows),)
    cells = np.empty(shape, dtype) if work is None else work.array("cells", shape, dtype)
    _lowrank(prep, v_rows, cells)
    return np.moveaxis(cells, -1, 0)


def _by_row(coef: np.ndarray) -> dict:
    """(K, rows, cols) coefficients as (rows, cols, K) arrays by dtype (float64, float32), made once per design."""
    by_row = np.ascontiguousarray(coef.transpose(1, 2, 0))
    return {np.dtype(np.float64): by_row, np.dtype(np.float32): by_row.astype(np.float32)}


def _lowrank(prep: Prepared, v_rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Cell currents of the low-rank form into cells (rows, cols, batch); returns the column currents (cols, batch).

    Cell current I = I0 − d·ΔC with I0 the row-line solution, d its slope and the column-wire rise
    ΔC_i = Σ_p λ_p w_p(i) x_p, x_p = Σ_i w_p(i) I_i solved self-consistently per column and vector:
    one compiled pass (kernels.lowrank_cells).
    """
    from circuitsim.surrogate import kernels  # numba: imported on first use (see there)

    a = prep.arrays
    phi, dphi = prep.basis.terms(v_rows.T)                                # (rows, K, batch) each
    w0, w1 = a["eigvec"]
    lam0, lam1 = a["lam"]
    return kernels.lowrank_cells(a["coef_rows"][np.dtype(np.float64)], phi, dphi, w0, w1, lam0, lam1, cells)


def relax_cells(prep: Prepared, v_rows: np.ndarray) -> np.ndarray:
    """Cell currents (batch, rows, cols) after a fixed number of damped wire-drop sweeps.

    State: the selector voltage of every cell. Each sweep takes the line voltages from the
    current cell currents (exact cumulative sums) and moves every selector voltage one
    damped Newton step towards its cell equation Vs + i0·sinh(Vs/v0)/G = V_cell.
    """
    a = prep.arrays
    g = a["g"]
    v0 = prep.basis.v0
    sel_i0 = a["i0"]
    k = sel_i0 / np.where(g > 0, g, np.inf)
    vs = selector_voltage(np.broadcast_to(v_rows[:, :, None], (len(v_rows),) + g.shape), g, sel_i0, v0)
    for _ in range(a["sweeps"]):
        i = sel_i0 * np.sinh(vs / v0) * (g > 0)
        v_cell = row_wire_volts(v_rows, i, a["r_row"]) - col_wire_volts(i, a["r_col"])
        x = np.clip(vs / v0, -80, 80)
        vs = vs - a["omega"] * (vs + k * np.sinh(x) - v_cell) / (1.0 + k / v0 * np.cosh(x))
    return sel_i0 * np.sinh(vs / v0) * (g > 0)
