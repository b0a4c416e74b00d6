"""Calibration data for the surrogate: the calibration sweep and reading SPICE points back.

Point layout in a results store (circuitsim.store), one point per design:
    inputs/crossbar/...          Crossbar.as_dict(): conductance, r_row, r_col, r_driver,
                                 r_sense [S, Ω], selector/{type, i0, v0}
    inputs/drive/v_rows          (batch, rows) row voltages [V]
    outputs/column_currents      (batch, cols) [A]
    provenance/engine            "spice" (only SPICE points calibrate), ngspice_version, ...
The sweep is described by a TOML file (examples/calibration_sweep.toml) and is seeded, so
the same file gives the same designs, inputs and point keys; finished points are skipped.
"""
from __future__ import annotations

import tomllib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitsim.design import Crossbar
from circuitsim.devices import SinhSelector
from circuitsim.surrogate import Sample

SWEEP_KEYS = {"seed", "sizes", "r_wire_ohm", "designs_per_point", "vectors_per_design", "v_max",
              "conductance_s", "r_driver_ohm", "r_sense_ohm", "active_fraction", "selector"}


@dataclass(frozen=True)
class CalibrationSweep:
    """Random 1S1R designs over sizes × wire resistances, with random input vectors."""

    seed: int
    sizes: tuple
    r_wire_ohm: tuple
    designs_per_point: int
    vectors_per_design: int
    v_max: float
    conductance_s: tuple
    r_driver_ohm: tuple
    r_sense_ohm: tuple
    active_fraction: float
    selector: dict

    @classmethod
    def load(cls, path: str | Path) -> CalibrationSweep:
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("calibration_sweep")
        if table is None:
            raise ValueError(f"{path}: no [calibration_sweep] table")
        unknown, missing = set(table) - SWEEP_KEYS, SWEEP_KEYS - set(table)
        if unknown or missing:
            raise ValueError(f"{path} [calibration_sweep]: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
        sizes = tuple(tuple(int(x) for x in (s if isinstance(s, list) else (s, s))) for s in table["sizes"])
        values = {**table, "sizes": sizes}
        for name in ("r_wire_ohm", "conductance_s", "r_driver_ohm", "r_sense_ohm"):
            values[name] = tuple(float(x) for x in table[name])
        return cls(**values)

    def points(self):
        """(Crossbar, v_rows) of every design, in a fixed order from the seed.

        Each design pins one cell at each conductance bound and starts its inputs with an
        all-on vector at v_max and one signed vector, so the calibrated range is reached.
        """
        rng = np.random.default_rng(self.seed)
        g_lo, g_hi = self.conductance_s
        selector = SinhSelector(**self.selector)
        for rows, cols in self.sizes:
            for r_wire in self.r_wire_ohm:
                for k in range(self.designs_per_point):
                    g = rng.uniform(g_lo, g_hi, (rows, cols))
                    g.flat[0], g.flat[-1] = g_lo, g_hi
                    # half the designs have ideal drivers and sense amplifiers
                    r_drv, r_sns = (rng.uniform(*self.r_driver_ohm), rng.uniform(*self.r_sense_ohm)) if k % 2 else (0, 0)
                    xb = Crossbar(conductance=g, r_row=r_wire, r_col=r_wire, r_driver=r_drv, r_sense=r_sns,
                                  selector=selector)
                    n_rand = self.vectors_per_design - 2
                    v = np.vstack([np.full(rows, self.v_max), rng.uniform(-self.v_max, self.v_max, (1, rows)),
                                   rng.uniform(0, self.v_max, (n_rand, rows))
                                   * (rng.random((n_rand, rows)) < self.active_fraction)])
                    yield xb, v


def run_sweep(sweep: CalibrationSweep, out: str | Path, worker=None, progress=print) -> int:
    """Simulate every missing point with ngspice and append it to the store at `out`; returns
    the number of points computed (0 when the file is already complete)."""
    from circuitsim.engines import simulate
    from circuitsim.spice import SpiceWorker
    from circuitsim.store import Store, point_key

    done = 0
    with Store.open(out, "a") as store, (nullcontext(worker) if worker else SpiceWorker()) as spice:
        for k, (xb, v) in enumerate(sweep.points()):
            inputs = {"crossbar": xb.as_dict(), "drive": {"v_rows": v}}
            key = point_key(inputs)
            if store.status(key) == "ok":
                continue
            res = simulate(xb, v, engine="spice", worker=spice)
            store.append(key, inputs, {"column_currents": res.column_currents}, res.provenance)
            done += 1
            progress(f"point {k}: {xb.shape[0]}x{xb.shape[1]}, r_wire {float(xb.r_row.flat[0]):g} Ω, "
                     f"{len(v)} vectors, {res.provenance['wall_time_s']:.1f} s")
    return done


def read_samples(path: str | Path) -> tuple[list[Sample], dict]:
    """SPICE samples of a results store and what was read: {'points', 'skipped_not_spice', ...}."""
    from circuitsim.store import read_points

    points = read_points(path)
    n = len(points["key"])
    need = ["inputs/crossbar/conductance", "inputs/drive/v_rows", "outputs/column_currents"]
    missing = [name for name in need if name not in points]
    if n == 0 or missing:
        raise ValueError(f"{path}: no calibration points (need {need}; missing {missing}); "
                         "make them with scripts/calibration_data.py (see README, '## Surrogate')")

    def get(name, k, default=0.0):
        column = points.get(name)
        return default if column is None or column[k] is None else column[k]

    samples, skipped = [], 0
    for k in range(n):
        if str(get("provenance/engine", k, "")) != "spice":
            skipped += 1
            continue
        kind = str(get("inputs/crossbar/selector/type", k, "none"))
        if kind != "SinhSelector":
            raise ValueError(f"{path}: point {points['key'][k]} has selector {kind!r}; the surrogate is "
                             "calibrated on 1S1R arrays with a SinhSelector")
        selector = SinhSelector(i0=float(get("inputs/crossbar/selector/i0", k)),
                                v0=float(get("inputs/crossbar/selector/v0", k)))
        xb = Crossbar(**{f: np.asarray(get(f"inputs/crossbar/{f}", k)) for f in
                         ("conductance", "r_row", "r_col", "r_driver", "r_sense")}, selector=selector)
        samples.append(Sample(xb, get("inputs/drive/v_rows", k), get("outputs/column_currents", k)))
    if not samples:
        raise ValueError(f"{path}: none of its {n} points is a SPICE result (provenance/engine = 'spice')")
    return samples, {"points": n, "skipped_not_spice": skipped}


def calibrate_file(data: str | Path, out: str | Path, *, plot: str | Path | None = None,
                   holdout_fraction: float = 0.25, seed: int = 0):
    """Calibrate on the SPICE points of store `data`, write the calibration to `out` (HDF5)
    and its held-out parity plot to `plot` (default: `out` with .png); returns the Calibration."""
    from circuitsim import plots
    from circuitsim.surrogate import calibrate, file_sha256, load, parity_figure, save

    data, out = Path(data), Path(out)
    digest = file_sha256(data)  # the main file; a store whose writer was killed is folded in by reopening it
    samples, read = read_samples(data)
    cal = calibrate(samples, holdout_fraction=holdout_fraction, seed=seed,
                    provenance={"data_file": data.name, "data_sha256": digest,
                                "data_points": read["points"], "data_points_not_spice": read["skipped_not_spice"]})
    save(cal, out)
    plots.save(parity_figure(cal), plot or out.with_suffix(".png"))
    return load(out)
