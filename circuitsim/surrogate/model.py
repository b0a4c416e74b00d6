"""engine="surrogate": calibrated reduced crossbar models, their fit to SPICE data, and their range.

Linear (1R) arrays take the exact path: the transfer matrix of the nodal equations gives
column and row currents as one matmul (exact to solver rounding). 1S1R arrays with a
sinh selector take a reduced model from circuitsim.surrogate.forms; its few scalars are
fitted with scipy.optimize.least_squares to stored SPICE results, some designs are held
out, and the calibration (parameters, residuals, held-out errors, the data file's sha256,
the calibrated range) is written to HDF5. Errors are |I_surrogate − I_spice| relative to
the design's full scale, the largest |I_spice| of that design.
"""
from __future__ import annotations

import hashlib
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from circuitsim import __version__
from circuitsim.circuit import make_drive
from circuitsim.design import Crossbar
from circuitsim.devices import SinhSelector
from circuitsim.errors import (
    CalibrationRangeWarning,
    EngineNotFoundError,
    SurrogateAccuracyError,
    SurrogateAccuracyWarning,
)
from circuitsim.results import Result
from circuitsim.solver.dc import transfer_matrix
from circuitsim.solver.ordering import single_threaded_blas
from circuitsim.surrogate import forms as models
from circuitsim.surrogate import trust

CALIBRATION_FORMAT = "circuitsim-surrogate-calibration/1"
DEFAULT_CALIBRATION = Path(__file__).resolve().parents[2] / "data" / "default_calibration.h5"
FITTED = {"chen": {"share_row_per_cell": 0.3, "share_col_per_cell": 0.3},
          "dmr": {"scale_row": 1.0, "scale_col": 1.0},
          "alphabeta": {"scale_row": 1.0, "scale_col": 1.0},
          "relax": {"omega": 0.8},
          "lowrank": {"scale_row": 1.0, "scale_col": 1.0}}
FIXED = {"relax": {"sweeps": 4}}
TARGET_ERROR = 0.01  # of full scale, the error goal of issue 6
ERROR_BOUND = TARGET_ERROR  # no surrogate answer is returned whose estimated error exceeds this fraction of full scale


# ---- calibration data -------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Sample:
    """One design with SPICE truth: v_rows (batch, rows) [V] and column_currents (batch, cols) [A]."""

    xb: Crossbar
    v_rows: np.ndarray
    column_currents: np.ndarray

    def __post_init__(self):
        rows, cols = self.xb.shape
        v, i = np.atleast_2d(self.v_rows), np.atleast_2d(self.column_currents)
        if v.shape[1] != rows or i.shape != (v.shape[0], cols):
            raise ValueError(f"sample of a {rows}x{cols} array needs v_rows (batch, {rows}) and column_currents "
                             f"(batch, {cols}); got {v.shape} and {i.shape}")
        object.__setattr__(self, "v_rows", v)
        object.__setattr__(self, "column_currents", i)

    @property
    def full_scale(self) -> float:
        return float(np.abs(self.column_currents).max())


@dataclass(frozen=True)
class Domain:
    """The calibrated range: every design and drive the fit saw lies inside it."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    r_row_ohm: tuple[float, float]
    r_col_ohm: tuple[float, float]
    r_driver_ohm: tuple[float, float]
    r_sense_ohm: tuple[float, float]
    conductance_s: tuple[float, float]
    v_rows_v: tuple[float, float]
    selector_i0: tuple[float, float]
    selector_v0: tuple[float, float]

    @classmethod
    def of(cls, samples: list[Sample]) -> Domain:
        def span(values):
            values = [np.asarray(v, dtype=float) for v in values]
            return float(min(v.min() for v in values)), float(max(v.max() for v in values))

        xbs = [s.xb for s in samples]
        return cls(rows=tuple(int(x) for x in span([x.shape[0] for x in xbs])),
                   cols=tuple(int(x) for x in span([x.shape[1] for x in xbs])),
                   r_row_ohm=span([x.r_row for x in xbs]), r_col_ohm=span([x.r_col for x in xbs]),
                   r_driver_ohm=span([x.r_driver for x in xbs]), r_sense_ohm=span([x.r_sense for x in xbs]),
                   conductance_s=span([x.conductance for x in xbs]),
                   v_rows_v=span([s.v_rows for s in samples]),
                   selector_i0=span([x.selector.i0 for x in xbs]), selector_v0=span([x.selector.v0 for x in xbs]))

    @property
    def v_abs_max(self) -> float:
        """Largest |row voltage| [V]: the span of the surrogate's voltage basis."""
        return max(abs(v) for v in self.v_rows_v)

    def violations(self, xb: Crossbar, v_rows: np.ndarray) -> list[str]:
        """Plain-language reasons why (xb, v_rows) lies outside this range (empty if inside).

        A bound is passed when a value exceeds it by more than 1% of the calibrated span
        (random data never reach the exact ends of the range it was drawn from)."""
        return self.design_violations(xb) + _outside("v_rows [V]", v_rows, self.v_rows_v)

    def design_violations(self, xb: Crossbar) -> list[str]:
        """violations() of the design alone (what simulate() remembers per design)."""
        checks = [("rows", xb.shape[0], self.rows), ("cols", xb.shape[1], self.cols)]
        checks += [(f"{name} [Ω]", getattr(xb, name), getattr(self, f"{name}_ohm"))
                   for name in ("r_row", "r_col", "r_driver", "r_sense")]
        checks += [("conductance [S]", xb.conductance, self.conductance_s),
                   ("selector i0 [A]", xb.selector.i0, self.selector_i0),
                   ("selector v0 [V]", xb.selector.v0, self.selector_v0)]
        return [reason for name, value, bounds in checks for reason in _outside(name, value, bounds)]


def _outside(name: str, value, bounds: tuple[float, float]) -> list[str]:
    """[why value lies outside bounds by more than 1 % of their span] or []."""
    lo, hi = bounds
    tol = 0.01 * (hi - lo) + 1e-9 * max(abs(lo), abs(hi))
    v_lo, v_hi = float(np.min(value)), float(np.max(value))
    if v_lo < lo - tol or v_hi > hi + tol:
        return [f"{name} spans [{v_lo:.3g}, {v_hi:.3g}], calibrated [{lo:.3g}, {hi:.3g}]"]
    return []


@dataclass(frozen=True)
class FormFit:
    """Fitted scalars of one reduced form and its errors (fractions of full scale)."""

    params: dict
    train_rms: float
    heldout_max: float
    heldout_p99: float
    heldout_rms: float
    seconds_per_vector: float
    heldout_mean: float = float("nan")   # mean |error|; NaN in calibration files written before it was stored


@dataclass(frozen=True)
class Calibration:
    """Fitted surrogate: every form's fit, the form simulate() uses, the range and provenance."""

    forms: dict
    form: str
    domain: Domain
    provenance: dict = field(default_factory=dict)
    heldout: dict = field(default_factory=dict)

    def using(self, form: str) -> Calibration:
        """The same calibration evaluated with another fitted form."""
        if form not in self.forms:
            raise ValueError(f"form {form!r} was not fitted; this calibration has {sorted(self.forms)}")
        return replace(self, form=form)

    def params(self, form: str | None = None) -> dict:
        form = form or self.form
        return {**self.forms[form].params, **FIXED.get(form, {})}


# ---- evaluating ---------------------------------------------------------------------------

def prepare(xb: Crossbar, calibration: Calibration, form: str | None = None) -> models.Prepared:
    """The design made ready for batches with the calibration's (or the given) form."""
    form = form or calibration.form
    params = calibration.params(form) if form in calibration.forms else {}
    return models.prepare(xb, form, params, calibration.domain.v_abs_max)


def _column_transfer(xb: Crossbar, circuit) -> tuple[np.ndarray, np.ndarray]:
    """(n_fixed, cols) and (n_fixed, rows) maps from source voltages to column / row currents.

    Every column's current is the sum of its cells' currents (the line has no other exit),
    so both follow from the node transfer matrix and the cell conductances.
    """
    t = transfer_matrix(circuit)
    rows, cols = xb.shape
    cell = ((t[circuit.cell_hi] - t[circuit.cell_lo]) * circuit.cell_g[:, None]).reshape(rows, cols, -1)
    return cell.sum(axis=0).T, cell.sum(axis=1).T


def linear_transfer(xb: Crossbar) -> np.ndarray:
    """T (rows, cols): exact column currents I = v_rows @ T of a linear array, sense nodes at 0 V."""
    if xb.cell_type != "1R":
        raise ValueError(f"the exact transfer matrix exists for linear (1R) arrays, not {xb.cell_type}")
    drive = make_drive(xb, np.zeros(xb.shape[0]))
    to_cols, _ = _column_transfer(xb, drive.circuit)
    return to_cols[drive.circuit.fixed_kind == 0]


def _nan(shape) -> np.ndarray:
    return np.broadcast_to(np.nan, shape)


def _result(drive, cols_i, rows_i, provenance, cell_v=None, cell_i=None) -> Result:
    circuit = drive.circuit
    batch, (rows, cols) = len(drive.fixed_volts), circuit.xb.shape
    power = np.nan if rows_i is None else np.einsum("bk,bk->b", drive.fixed_volts, _source_currents(circuit, rows_i,
                                                                                                       cols_i))
    arrays = [cols_i, _nan((batch, rows)) if rows_i is None else rows_i,
              _nan((batch, rows, cols)) if cell_v is None else cell_v,
              _nan((batch, rows, cols)) if cell_i is None else cell_i,
              np.broadcast_to(power, (batch,)), _nan((batch, circuit.n_nodes))]
    if drive.single:
        arrays = [a[0] for a in arrays]
    return Result("surrogate", *arrays, circuit=circuit, provenance=provenance)


def _source_currents(circuit, rows_i, cols_i) -> np.ndarray:
    """(batch, n_fixed) current each source delivers, from line currents (gates deliver none)."""
    lines = np.concatenate([rows_i, -cols_i, np.zeros((len(rows_i), 1))], axis=1)    # one gather for all sources
    kind, line = circuit.fixed_kind, circuit.fixed_line
    return lines[:, np.where(kind == 0, line, np.where(kind == 1, rows_i.shape[1] + line, lines.shape[1] - 1))]


def _row_volts_of_1s1r(drive) -> np.ndarray:
    circuit, rows = drive.circuit, drive.circuit.xb.shape[0]
    if circuit.floating_rows.any() or circuit.floating_cols.any():
        raise ValueError("the 1S1R surrogate assumes every row driven and every column sensed; "
                         "use engine='numpy' for floating lines")
    is_col = circuit.fixed_kind == 1
    if np.any(drive.fixed_volts[:, is_col] != 0):
        raise ValueError("the 1S1R surrogate assumes sense nodes at 0 V (v_cols = 0); use engine='numpy'")
    v = np.zeros((len(drive.fixed_volts), rows))
    v[:, circuit.fixed_line[circuit.fixed_kind == 0]] = drive.fixed_volts[:, circuit.fixed_kind == 0]
    return v


def has_sinh_selector(xb: Crossbar) -> bool:
    """A 1S1R array with a sinh selector: what the reduced forms describe."""
    return isinstance(xb.selector, SinhSelector)


class _Lru:
    """A small least-recently-used map: what a repeated call on the same design or file reuses."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()

    def get(self, key, make):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.items[key] = make()
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


_CALIBRATIONS = _Lru(4)     # by (path, mtime, size): a rewritten file is read again
_PREPARED = _Lru(8)         # by design content, calibration and form; ~13 MB each at 256x256, plus its work arrays
                            # (trust.Workspace: 7 float32 arrays of a chunk, <= 59 MB; 59 MB at 256², 11 MB at 64²
                            # with a batch of 100)
_DESIGN_RANGE = _Lru(8)     # by design content and calibrated range: the design's Domain.design_violations
_TRANSFERS = _Lru(8)        # 1R: by design content and floating lines; (n_fixed, rows + cols) each


def load_default() -> Calibration:
    """The calibration shipped in data/ (docs/guide/surrogate.md says how it is made)."""
    if not DEFAULT_CALIBRATION.exists():
        raise EngineNotFoundError(f"default calibration {DEFAULT_CALIBRATION} is missing; "
                                  "remake it with the sweep and calibrate commands in docs/guide/surrogate.md")
    return load_cached(DEFAULT_CALIBRATION)


def load_cached(path: str | Path) -> Calibration:
    """load(path), read again only when the file changed (path, modification time and size)."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"calibration file {path} does not exist") from None
    return _CALIBRATIONS.get((str(path), stat.st_mtime_ns, stat.st_size), lambda: load(path))


DESIGN_ARRAYS = ("conductance", "r_row", "r_col", "r_driver", "r_sense")
_DESIGN_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # Crossbar -> design_key, while it lives


def design_key(xb: Crossbar) -> str:
    """Digest of everything the surrogate reads from a design (arrays by content, selector by value).

    Remembered per Crossbar object (1.2 ms of hashing per call at 256x256): Crossbar is frozen and
    its validated arrays are read-only copies, so the object's content cannot change while they stay
    read-only; a design whose arrays were made writeable again is hashed on every call."""
    frozen = not any(getattr(xb, name).flags.writeable for name in DESIGN_ARRAYS)
    key = _DESIGN_KEYS.get(xb) if frozen else None
    if key is None:
        digest = hashlib.blake2b(digest_size=20)
        for name in DESIGN_ARRAYS:
            value = np.ascontiguousarray(getattr(xb, name), dtype=float)
            digest.update(repr((name, value.shape)).encode())
            digest.update(value.tobytes())
        digest.update(repr(xb.selector).encode())
        key = digest.hexdigest()
        if frozen:
            _DESIGN_KEYS[xb] = key
    return key


def _prepared(xb: Crossbar, calibration: Calibration) -> tuple[models.Prepared, trust.Equations, trust.Workspace]:
    key = (design_key(xb), calibration.provenance.get("calibration_sha256", id(calibration)), calibration.form,
           repr(calibration.params()), calibration.domain.v_abs_max)
    return _PREPARED.get(key, lambda: (prepare(xb, calibration), trust.Equations.of(xb), trust.Workspace()))


def simulate_surrogate(xb: Crossbar, drive, calibration=None, exact: Callable[[], Result] | None = None) -> Result:
    """engine="surrogate" for a validated drive (engines.Drive).

    1R: exact transfer matrix (any drive); fills column and row currents and power.
    1S1R (sinh selector): the calibration's form, checked on every call by its residual in
    the exact equations (trust.estimate); where the estimate is above ERROR_BOUND, up to
    NEWTON_STEPS corrections by the check's own solve, each checked again. An answer is returned
    only inside the calibrated range and with an estimated error within ERROR_BOUND of full scale; otherwise `exact()`
    (the numpy engine) answers, with a warning, or, when `exact` is None, SurrogateAccuracyError
    is raised. Provenance records the estimate, the bound and any fallback. Fills column and
    row currents and power (the "relax" form also cell currents and voltages); the rest is NaN.
    calibration: a Calibration, a path to a calibration .h5, or None for the shipped default.
    """
    start = time.perf_counter()
    provenance = {"engine": "surrogate", "circuitsim_version": __version__}
    if xb.cell_type == "1R":
        circuit = drive.circuit
        key = (design_key(xb), circuit.floating_rows.tobytes(), circuit.floating_cols.tobytes())
        to_cols, to_rows = _TRANSFERS.get(key, lambda: _column_transfer(xb, circuit))
        provenance.update(form="transfer-matrix", error_estimate=0.0, wall_time_s=time.perf_counter() - start)
        return _result(drive, drive.fixed_volts @ to_cols, drive.fixed_volts @ to_rows, provenance)
    if not has_sinh_selector(xb):
        what = xb.cell_type if xb.selector is None else f"1S1R with a {type(xb.selector).__name__}"
        raise ValueError(f"the surrogate covers 1R arrays and 1S1R arrays with a SinhSelector, not {what}; "
                         "use engine='numpy'")
    if calibration is None:
        calibration = load_default()
    elif not isinstance(calibration, Calibration):
        calibration = load_cached(calibration)
    v_rows = _row_volts_of_1s1r(drive)
    provenance.update(form=calibration.form, calibration=calibration.provenance.get("calibration_sha256", ""),
                      error_bound=ERROR_BOUND)
    domain = calibration.domain
    problems = _DESIGN_RANGE.get((design_key(xb), domain), lambda: domain.design_violations(xb))
    problems = problems + _outside("v_rows [V]", v_rows, domain.v_rows_v)
    if problems:
        return _untrusted("design outside the calibrated range: " + "; ".join(problems), CalibrationRangeWarning,
                          exact, provenance)
    with single_threaded_blas():
        prep, equations, workspace = _prepared(xb, calibration)
        with workspace.take() as work:
            cols_i, rows_i, cell_i, estimate, newton = _evaluate(prep, equations, v_rows, work)
    provenance.update(error_estimate=estimate.relative, cg_iterations=estimate.iterations, newton_steps=newton)
    if not estimate.relative <= ERROR_BOUND:
        return _untrusted(f"surrogate error estimate {100 * estimate.relative:.3g} % of full scale exceeds its bound "
                          f"{100 * ERROR_BOUND:g} %", SurrogateAccuracyWarning, exact, provenance)
    provenance["wall_time_s"] = time.perf_counter() - start
    if cell_i is None:
        return _result(drive, cols_i, rows_i, provenance)
    return _result(drive, cols_i, rows_i, provenance, cell_i=cell_i, cell_v=_cell_volts(prep, v_rows, cell_i))


CHUNK_CELLS = 1 << 21   # cells per chunk of the batch: 8 MB float32 work arrays (32 vectors at 256²: long vector adds)
VECTOR_BLOCK = 8   # chunks are a multiple of this many vectors (within CHUNK_CELLS): the compiled loops run along
                   # the batch in SIMD blocks and what is left over runs scalar (a wire pass at 256²: 2.1 ns per cell
                   # on chunks of 25 vectors, 0.75 on 32); a short last chunk costs them little
NEWTON_STEPS = 2   # corrections tried on a chunk the check cannot vouch for, before the exact engine answers


def _evaluate(prep: models.Prepared, equations: trust.Equations, v_rows: np.ndarray,
              work: trust.Workspace | None = None):
    """(column currents, row currents, cell currents or None, estimate, Newton steps) in chunks of
    the batch, so that memory stays bounded; cell currents are kept for the "relax" form only.
    work: the design's work arrays for the check (none of the results is a view of them).

    A chunk whose estimate exceeds ERROR_BOUND gets up to NEWTON_STEPS corrections by the check's
    own solve (trust.estimate, correct=True), each checked again like the form's answer."""
    rows, cols = equations.on.shape
    most = max(1, CHUNK_CELLS // (rows * cols))
    equal = -(-len(v_rows) // -(-len(v_rows) // most))
    step = min(most, -(-equal // VECTOR_BLOCK) * VECTOR_BLOCK)
    cols_i, rows_i, cells_i, errors, iterations, newton = [], [], [], [], 0, 0
    for lo, cell_i in models.cell_current_chunks(prep, v_rows, step, np.float32, work):   # work arrays: sums kept
        v = v_rows[lo:lo + step]
        estimate = trust.estimate(equations, v, cell_i, decide_at=ERROR_BOUND, correct=True, work=work)
        for k in range(NEWTON_STEPS):
            if estimate.relative <= ERROR_BOUND or not np.isfinite(estimate.relative):
                break
            np.moveaxis(cell_i, 0, -1)[...] += estimate.correction
            estimate = trust.estimate(equations, v, cell_i, decide_at=ERROR_BOUND, correct=True, work=work)
            newton = max(newton, k + 1)
        errors.append(estimate.column_error_a)
        iterations = max(iterations, estimate.iterations)
        cols_i.append(estimate.column_i)
        rows_i.append(estimate.row_i)
        if prep.form == "relax":
            cells_i.append(cell_i)
    cols_i, errors = np.concatenate(cols_i), np.concatenate(errors)
    estimate = trust.Estimate(errors, trust.relative(errors, cols_i), iterations)
    return cols_i, np.concatenate(rows_i), np.concatenate(cells_i).astype(float) if cells_i else None, estimate, newton


def _untrusted(reason: str, category: type[Warning], exact, provenance: dict) -> Result:
    """The exact engine's answer (with a warning) where the surrogate cannot vouch for its own."""
    if exact is None:
        raise SurrogateAccuracyError(f"{reason}; the surrogate gives no answer here (fallback disabled): "
                                     "use engine='numpy'")
    warnings.warn(f"{reason}; solved with engine='numpy' instead", category, stacklevel=4)
    result = exact()
    checked = {k: v for k, v in provenance.items() if k.startswith("error_") or k == "cg_iterations"}
    return replace(result, provenance={**result.provenance, "surrogate_fallback": reason, **checked})


def _cell_volts(prep: models.Prepared, v_rows: np.ndarray, cell_i: np.ndarray) -> np.ndarray:
    a = prep.arrays
    return models.row_wire_volts(v_rows, cell_i, a["r_row"]) - models.col_wire_volts(cell_i, a["r_col"])


# ---- fitting ------------------------------------------------------------------------------

def relative_errors(samples: list[Sample], form: str, params: dict, v_max: float, progress=None) -> np.ndarray:
    """(I_form − I_spice) / full scale, all samples' entries flattened; progress (tqdm-like) counts cells."""
    out = []
    for s in samples:
        prep = models.prepare(s.xb, form, params, v_max)
        out.append(((models.column_currents(prep, s.v_rows) - s.column_currents) / s.full_scale).ravel())
        if progress is not None:
            progress.update(s.xb.conductance.size)
    return np.concatenate(out)


MAX_FIT_EVALUATIONS = 30   # least_squares max_nfev per form: the fits converge in fewer; bounds the time


def _fit_form(form: str, train: list[Sample], v_max: float, progress=None) -> tuple[dict, np.ndarray]:
    """scipy.optimize.least_squares over the form's scalars; returns (params, train residuals)."""
    from scipy.optimize import least_squares

    names = list(FITTED.get(form, {}))
    fixed = FIXED.get(form, {})
    if not names:
        return dict(fixed), relative_errors(train, form, fixed, v_max, progress)

    def resid(x):
        return relative_errors(train, form, {**dict(zip(names, x)), **fixed}, v_max, progress)

    fit = least_squares(resid, [FITTED[form][n] for n in names], x_scale=1.0, diff_step=1e-3,
                        max_nfev=MAX_FIT_EVALUATIONS)
    params = {n: float(x) for n, x in zip(names, fit.x)}
    return params, fit.fun


def _work_cells(form: str, train: list[Sample], held: list[Sample]) -> int:
    """Upper bound of the cells a form's fit and held-out check evaluate (what the progress bar counts):
    each fit evaluation costs one pass plus one per fitted scalar (its finite-difference Jacobian)."""
    passes = MAX_FIT_EVALUATIONS * (1 + len(FITTED[form])) if FITTED.get(form) else 1
    return passes * sum(s.xb.conductance.size for s in train) + sum(s.xb.conductance.size for s in held)


def _seconds_per_vector(form: str, params: dict, sample: Sample, v_max: float, repeats: int = 3) -> float:
    prep = models.prepare(sample.xb, form, {**params, **FIXED.get(form, {})}, v_max)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        models.column_currents(prep, sample.v_rows)
        best = min(best, time.perf_counter() - start)
    return best / len(sample.v_rows)


def split(samples: list[Sample], holdout_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out whole designs (unseen conductance patterns and input vectors): the same fraction of
    every array size with two or more designs (the held-out error map per size), of the sizes seen
    once taken together, and at least one design."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must lie in (0, 1), got {holdout_fraction}")
    if len(samples) < 2:
        raise ValueError("calibration needs at least two designs (one is held out)")
    rng = np.random.default_rng(seed)
    shapes = sorted({s.xb.shape for s in samples})
    groups = [[k for k, s in enumerate(samples) if s.xb.shape == shape] for shape in shapes]
    groups = [g for g in groups if len(g) > 1] + [[g[0] for g in groups if len(g) == 1]]   # sizes seen once: pooled
    out = set()
    for group in groups:
        n_out = min(len(group) - 1, round(holdout_fraction * len(group)))
        out.update(rng.permutation(group)[:max(0, n_out)].tolist())
    if not out:
        out.add(int(rng.integers(len(samples))))
    return [s for k, s in enumerate(samples) if k not in out], [s for k, s in enumerate(samples) if k in out]


def _check_samples(samples: list[Sample]) -> None:
    for k, s in enumerate(samples):
        if not has_sinh_selector(s.xb):
            raise ValueError(f"sample {k}: the surrogate is calibrated on 1S1R arrays with a SinhSelector, "
                             f"got a {s.xb.cell_type} array")
        if s.full_scale == 0:
            raise ValueError(f"sample {k}: all column currents are zero, no full scale to compare against")


def calibrate(samples: list[Sample], *, forms: tuple[str, ...] | None = None, holdout_fraction: float = 0.25,
              seed: int = 0, provenance: dict | None = None, progress=None,
              fit_max_cells: int | None = None) -> Calibration:
    """Fit every form on the training designs, measure all on the held-out ones.

    The calibration uses the cheapest form (models.FORMS is ordered by cost per vector)
    whose largest held-out error is within TARGET_ERROR of full scale, else the most
    accurate one. A choice by operation count, not by a noisy timing, is reproducible.
    forms: the forms to fit (None: all of models.FORMS).
    progress: a tqdm-like bar; its total is set to an upper bound of the cells evaluated.
    fit_max_cells: designs with more cells are all held out: they measure how the fit on the
    smaller ones extrapolates, and fitting on them would cost most of the time (None: no limit).
    """
    _check_samples(samples)
    forms = models.FORMS if forms is None else tuple(forms)
    unknown = set(forms) - set(models.FORMS)
    if unknown:
        raise ValueError(f"unknown surrogate forms {sorted(unknown)}; choose from {models.FORMS}")
    train, held = split(samples, holdout_fraction, seed)
    if fit_max_cells is not None:
        held += [s for s in train if s.xb.conductance.size > fit_max_cells]
        train = [s for s in train if s.xb.conductance.size <= fit_max_cells]
        if not train:
            raise ValueError(f"no design has at most fit_max_cells = {fit_max_cells} cells to fit on")
    domain = Domain.of(samples)
    fits, heldout = {}, {"full_scale_a": np.array([s.full_scale for s in held]),
                         "rows": np.array([s.xb.shape[0] for s in held]),
                         "cols": np.array([s.xb.shape[1] for s in held]),
                         "r_row_ohm": np.array([float(np.mean(s.xb.r_row)) for s in held]),
                         "r_col_ohm": np.array([float(np.mean(s.xb.r_col)) for s in held]),
                         "spice_a": np.concatenate([s.column_currents.ravel() for s in held])}
    biggest = max(held, key=lambda s: s.xb.conductance.size)
    if progress is None:
        from tqdm import tqdm

        progress = tqdm(disable=True)
    budget = np.cumsum([_work_cells(form, train, held) for form in forms])
    progress.total = int(budget[-1])
    ends = np.cumsum([s.column_currents.size for s in held])[:-1]
    for form, done in zip(forms, budget):
        progress.set_postfix_str(form)
        params, train_res = _fit_form(form, train, domain.v_abs_max, progress)
        full = {**params, **FIXED.get(form, {})}
        err = relative_errors(held, form, full, domain.v_abs_max, progress)
        per_design = [np.abs(e).max() for e in np.split(err, ends)]
        heldout[f"{form}_max_error"] = np.array(per_design)
        heldout[f"{form}_a"] = heldout["spice_a"] + err * np.repeat(
            heldout["full_scale_a"], [s.column_currents.size for s in held])
        fits[form] = FormFit(params={k: v for k, v in params.items() if k not in FIXED.get(form, {})},
                             train_rms=float(np.sqrt(np.mean(train_res ** 2))), heldout_max=float(np.abs(err).max()),
                             heldout_p99=float(np.quantile(np.abs(err), 0.99)),
                             heldout_rms=float(np.sqrt(np.mean(err ** 2))), heldout_mean=float(np.mean(np.abs(err))),
                             seconds_per_vector=_seconds_per_vector(form, params, biggest, domain.v_abs_max))
        progress.update(int(done) - progress.n)   # the fit may have stopped before its budget
    chosen = _choose(fits)
    checked = [_checked_error(s, chosen, {**fits[chosen].params, **FIXED.get(chosen, {})}, domain.v_abs_max)
               for s in held]
    heldout["checked_max_error"] = np.array([error for error, _ in checked])
    heldout["checked_newton_steps"] = np.array([steps for _, steps in checked])
    prov = {"circuitsim_version": __version__, "seed": seed, "holdout_fraction": holdout_fraction,
            "fit_max_cells": -1 if fit_max_cells is None else fit_max_cells,
            "n_designs_train": len(train), "n_designs_heldout": len(held),
            "n_vectors_train": int(sum(len(s.v_rows) for s in train)),
            "n_vectors_heldout": int(sum(len(s.v_rows) for s in held)), **(provenance or {})}
    return Calibration(forms=fits, form=chosen, domain=domain, provenance=prov, heldout=heldout)


def _checked_error(sample: Sample, form: str, params: dict, v_max: float) -> tuple[float, int]:
    """(max |I − I_spice| / full scale of what simulate() returns for the sample, Newton steps it took):
    the form checked and corrected as on every call; NaN where the check would not vouch for it
    (the exact engine would answer)."""
    prep = models.prepare(sample.xb, form, params, v_max)
    with single_threaded_blas():
        cols_i, _, _, estimate, newton = _evaluate(prep, trust.Equations.of(sample.xb), sample.v_rows)
    if not estimate.relative <= ERROR_BOUND:
        return float("nan"), newton
    return float(np.abs(cols_i - sample.column_currents).max() / sample.full_scale), newton


def _choose(fits: dict) -> str:
    good = [f for f in models.FORMS if f in fits and fits[f].heldout_max <= TARGET_ERROR]
    return good[0] if good else min(fits, key=lambda f: fits[f].heldout_max)


# ---- HDF5 ---------------------------------------------------------------------------------

def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(calibration: Calibration, path: str | Path) -> Path:
    """Write the calibration to HDF5 atomically (a temporary file renamed into place)."""
    import h5py

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": CALIBRATION_FORMAT, "form": calibration.form})
            f.create_group("provenance").attrs.update(calibration.provenance)
            dom = f.create_group("domain")
            for name, value in vars(calibration.domain).items():
                dom.attrs[name] = value
            for form, fit in calibration.forms.items():
                g = f.create_group(f"forms/{form}")
                g.create_group("params").attrs.update(fit.params)
                g.attrs.update({k: v for k, v in vars(fit).items() if k != "params"})
            held = f.create_group("heldout")
            for name, value in calibration.heldout.items():
                held.create_dataset(name, data=value)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(path: str | Path) -> Calibration:
    """Read a calibration written by save()."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"calibration file {path} does not exist")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"{path} is not a surrogate calibration (format {f.attrs.get('format')!r})")
        dom = {k: (tuple(v.tolist()) if np.ndim(v) else v.item()) for k, v in f["domain"].attrs.items()}
        forms = {name: FormFit(params={k: float(v) for k, v in g["params"].attrs.items()},
                               **{k: float(v) for k, v in g.attrs.items()})
                 for name, g in f["forms"].items()}
        prov = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f["provenance"].attrs.items()}
        prov["calibration_sha256"] = file_sha256(path)
        return Calibration(forms=forms, form=str(f.attrs["form"]), domain=Domain(**dom), provenance=prov,
                           heldout={k: v[()] for k, v in f["heldout"].items()})

