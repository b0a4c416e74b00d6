"""Calibration data for the surrogate: SPICE points of a results store (circuitsim.store).

The points come from `circuitsim sweep` (examples/calibration_sweep.toml); each holds
    inputs/design/...        Crossbar.as_dict(): conductance, r_row, r_col, r_driver, r_sense
                             [S, Ω], selector/{type, i0, v0}
    inputs/drive/v_rows      (batch, rows) row voltages [V]; every row driven, sense at 0 V
    outputs/column_currents  (batch, cols) [A]
    provenance/engine        "spice": only SPICE points calibrate
Points of another engine are skipped (and counted); points the surrogate cannot describe
(another selector, v_cols or floating lines) are an error, before anything is fitted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.devices import SinhSelector
from circuitsim.surrogate.model import Sample

DESIGN = "inputs/design/"
ONLY_DRIVE = "inputs/drive/v_rows"


def read_samples(path: str | Path) -> tuple[list[Sample], dict]:
    """SPICE samples of a results store and what was read: {'points', 'skipped_not_spice', ...}."""
    from circuitsim.store import read_points

    points = read_points(path)
    n = len(points["key"])
    need = [DESIGN + "conductance", ONLY_DRIVE, "outputs/column_currents"]
    missing = [name for name in need if name not in points]
    if n == 0 or missing:
        raise ValueError(f"{path}: no calibration points (need {need}; missing {missing}); make them with "
                         "`circuitsim sweep examples/calibration_sweep.toml` (docs/guide/surrogate.md)")
    other_drive = [name for name in points if name.startswith("inputs/drive/") and name != ONLY_DRIVE]

    def get(name, k, default=0.0):
        column = points.get(name)
        return default if column is None or column[k] is None else column[k]

    samples, skipped = [], 0
    # in content-hash order: which designs are held out must not depend on which worker finished first
    for k in np.argsort(points["key"], kind="stable"):
        if str(get("provenance/engine", k, "")) != "spice":
            skipped += 1
            continue
        kind = str(get(DESIGN + "selector/type", k, "none"))
        extra = [name for name in other_drive if points[name][k] is not None]
        if kind != "SinhSelector" or extra:
            raise ValueError(f"{path}: point {points['key'][k]} has selector {kind!r} and drive {extra}; the "
                             "surrogate is calibrated on 1S1R arrays with a SinhSelector, driven by v_rows only")
        selector = SinhSelector(i0=float(get(DESIGN + "selector/i0", k)), v0=float(get(DESIGN + "selector/v0", k)))
        xb = Crossbar(**{f: np.asarray(get(DESIGN + f, k)) for f in
                         ("conductance", "r_row", "r_col", "r_driver", "r_sense")}, selector=selector)
        samples.append(Sample(xb, get(ONLY_DRIVE, k), get("outputs/column_currents", k)))
    if not samples:
        raise ValueError(f"{path}: none of its {n} points is a SPICE result (provenance/engine = 'spice')")
    return samples, {"points": n, "skipped_not_spice": skipped}


def calibrate_file(data: str | Path, out: str | Path, *, holdout_fraction: float = 0.25, seed: int = 0,
                   progress=None, fit_max_cells: int | None = None, forms: tuple[str, ...] | None = None):
    """Calibrate on the SPICE points of store `data`, write the calibration to `out` (HDF5);
    returns the Calibration as read back from `out`.
    progress: a tqdm-like bar; fit_max_cells: larger designs are all held out; forms: the forms to
    fit (None: all); see model.calibrate."""
    from circuitsim.surrogate.model import calibrate, file_sha256, load, save

    data, out = Path(data), Path(out)
    digest = file_sha256(data)  # the main file; a store whose writer was killed is folded in by reopening it
    samples, read = read_samples(data)
    cal = calibrate(samples, holdout_fraction=holdout_fraction, seed=seed, progress=progress,
                    fit_max_cells=fit_max_cells, forms=forms,
                    provenance={"data_file": data.name, "data_sha256": digest,
                                "data_points": read["points"], "data_points_not_spice": read["skipped_not_spice"]})
    save(cal, out)
    return load(out)


def heldout_by_size(calibration) -> list[tuple[int, int, int, float, float]]:
    """(rows, cols, held-out designs, largest and mean per-design max error) of the calibration's
    form per array size: the held-out error map."""
    held = calibration.heldout
    errors = held[f"{calibration.form}_max_error"]
    shapes = sorted(set(zip(held["rows"].tolist(), held["cols"].tolist())))
    out = []
    for rows, cols in shapes:
        pick = (held["rows"] == rows) & (held["cols"] == cols)
        out.append((rows, cols, int(pick.sum()), float(errors[pick].max()), float(errors[pick].mean())))
    return out


def checked_by_size(calibration) -> list[tuple[int, int, int, float, int]]:
    """(rows, cols, held-out designs, largest per-design max error, designs the check would not
    vouch for) of what simulate() returns per array size: the calibration's form checked and
    corrected as on every call. Empty for calibration files written before this was stored."""
    held = calibration.heldout
    if "checked_max_error" not in held:
        return []
    errors = held["checked_max_error"]
    out = []
    for rows, cols in sorted(set(zip(held["rows"].tolist(), held["cols"].tolist()))):
        pick = (held["rows"] == rows) & (held["cols"] == cols)
        vouched = errors[pick][np.isfinite(errors[pick])]
        out.append((rows, cols, int(pick.sum()), float(vouched.max(initial=0.0)), int(pick.sum() - vouched.size)))
    return out
