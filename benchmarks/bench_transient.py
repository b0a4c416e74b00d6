"""Read transients of n×n arrays through RC lines: the numpy engine against ngspice .tran, side by side.

Every measurement runs in a fresh child process, so each row's peak memory (RSS) is its own: the
numpy engine (`array_transient(engine="numpy", detail=False)`: column currents at 2001 output
times) and ngspice 46 with KLU at its best (`ngspice -b` on the same .tran deck, which saves only
the source currents: its loading + parsing + analysis time from `.options acct`, and its peak
RSS). Both answers are compared (column currents at ngspice's time points, relative to full
scale) before a time is reported. The read: every row ramps to its read voltage in 50 ps and
holds for 2 ns; wires r = 5 Ω and c = 0.05 fF per segment, 0.01 fF across each cell, driver 1 kΩ.

    .venv/bin/python benchmarks/bench_transient.py [--rows NAME ...] [--no-ngspice] [--rtol 1e-5]
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_core import ngspice_batch, run_child  # benchmarks/ is on sys.path when this file runs as a script

import circuitsim
from circuitsim.devices import NmosAccess, SinhSelector
from circuitsim.transient import Drive, array_transient, transient_deck

CELLS = {"1R": {}, "1S1R": {"selector": SinhSelector()}, "1T1R": {"transistor": NmosAccess()}}
ROWS = {  # name: (cell type, n for n×n, goal)
    "1R-32": ("1R", 32, ""), "1S1R-32": ("1S1R", 32, ""), "1T1R-32": ("1T1R", 32, ""),
    "1R-64": ("1R", 64, ""), "1S1R-64": ("1S1R", 64, ""), "1T1R-64": ("1T1R", 64, ""),
    "1R-128": ("1R", 128, ""), "1S1R-128": ("1S1R", 128, ""),
    "1R-256": ("1R", 256, ""), "1S1R-256": ("1S1R", 256, "well under 60 s"),
    "1S1R-512": ("1S1R", 512, ""), "1S1R-1024": ("1S1R", 1024, "feasible"),
}
NGSPICE_UP_TO = 64  # ngspice takes 1-3 minutes there already


def design(cell: str, n: int, seed: int = 0) -> tuple[circuitsim.Crossbar, Drive]:
    rng = np.random.default_rng(seed)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-5, (n, n)), r_row=5.0, r_col=5.0, r_driver=1e3,
                             c_row=5e-17, c_col=5e-17, c_cell=1e-17, **CELLS[cell])
    v = rng.uniform(0.2, 0.4, n)
    drive = Drive([0.0, 5e-11, 2e-9], np.outer([0, 1, 1], v), np.zeros((3, n)))
    return xb, drive


def ngspice_run(deck: str) -> tuple[float, np.ndarray, np.ndarray]:
    """ngspice's own time [s] for the .tran deck, its time points and its column currents (points, cols) [A]."""
    seconds, names, values = ngspice_batch(deck)
    senses = sorted((k for k, name in enumerate(names) if name.startswith("i(vout")),
                    key=lambda k: int(re.search(r"\d+", names[k]).group()))
    return seconds, values[:, names.index("time")], values[:, senses]


def measure(engine: str, row: str, rtol: float, t_eval: str | None) -> dict:
    """One engine on one row, in this (child) process; t_eval: a JSON file of the numpy engine's
    output times (ngspice's time points), or None for 2001 uniform ones."""
    cell, n, _ = ROWS[row]
    xb, drive = design(cell, n)
    if engine == "numpy":
        times = None if t_eval is None else json.loads(Path(t_eval).read_text())
        start = time.perf_counter()
        res = array_transient(xb, None, drive, engine="numpy", detail=False, rtol=rtol, t_eval=times)
        seconds = time.perf_counter() - start
        p = res.provenance
        return {"seconds": seconds, "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                "steps": p["steps"], "factorizations": p["factorizations"], "solves": p["solves"],
                "time_s": res.time_s.tolist(), "currents": res.column_currents.tolist()}
    seconds, t, currents = ngspice_run(transient_deck(xb, None, drive, detail=False))
    return {"seconds": seconds, "rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
            "time_s": t.tolist(), "currents": currents.tolist()}


def child(engine: str, row: str, rtol: float, timeout_s: float, t_eval: str | None = None) -> dict | None:
    args = [sys.executable, __file__, "--measure", engine, row, "--rtol", str(rtol)]
    args += ["--t-eval", t_eval] if t_eval else []
    result = run_child(args, f"{engine} on {row}", timeout_s)
    if result is not None:
        print(f"  {engine} on {row}: {result['seconds']:.2f} s, {result['rss_gb']:.2f} GB", flush=True)
    return result


def agreement(mine: dict, spice: dict) -> float:
    """Largest |numpy − ngspice| column current at ngspice's time points (numpy's output times),
    relative to full scale."""
    ref = np.array(spice["currents"])
    return float(np.max(np.abs(np.array(mine["currents"]) - ref)) / np.max(np.abs(ref)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--no-ngspice", action="store_true")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "ROW"), help=argparse.SUPPRESS)
    parser.add_argument("--t-eval", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, args.rtol, args.t_eval)))
        return
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in args.rows:
            spice = None if args.no_ngspice or ROWS[row][1] > NGSPICE_UP_TO else child("ngspice", row, args.rtol,
                                                                                        args.timeout)
            times = None
            if spice is not None:  # numpy answers at ngspice's time points
                times = str(Path(tmp) / f"{row}.json")
                Path(times).write_text(json.dumps(spice["time_s"]))
            table.append((row, child("numpy", row, args.rtol, args.timeout, times), spice))
    print(f"\nread transient, numpy rtol {args.rtol:g}; seconds and peak RSS [GB] per engine; agreement = "
          "max |numpy − ngspice| / full scale")
    print(f"{'row':<10} {'goal':<16} {'numpy s':>8} {'GB':>5} {'steps':>6} {'fact':>5} {'solves':>6} "
          f"{'ms/step':>8} {'ngspice s':>10} {'GB':>5} {'speed-up':>9} {'agreement':>10}")
    for row, mine, spice in table:
        if mine is None:
            print(f"{row:<10} {ROWS[row][2]:<16} failed")
            continue
        per_step = 1e3 * mine["seconds"] / mine["steps"]
        sp = (f"{spice['seconds']:10.2f} {spice['rss_gb']:5.2f} {spice['seconds'] / mine['seconds']:8.1f}x "
              f"{agreement(mine, spice):10.1e}") if spice else f"{'-':>10} {'-':>5} {'-':>9} {'-':>10}"
        print(f"{row:<10} {ROWS[row][2]:<16} {mine['seconds']:8.2f} {mine['rss_gb']:5.2f} {mine['steps']:6d} "
              f"{mine['factorizations']:5d} {mine['solves']:6d} {per_step:8.1f} {sp}")


if __name__ == "__main__":
    main()
