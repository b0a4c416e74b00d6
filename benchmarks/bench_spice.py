"""The spice engine end to end against bare `ngspice -b` on the same deck, side by side in one run.

For each cell type and size: the deck simulate() runs (circuitsim.netlist) is written to a
file and run by the ngspice program (`ngspice -b -r out.raw deck`: process start, parsing,
.op with KLU, the rawfile of every vector); then simulate(engine="spice") on a warm worker
(deck rendering, the job across the process boundary, parsing, .op, reading the vectors,
results). Both are timed alternately, best of --repeat; the ratio is engine / bare. Peak RSS:
the ngspice program's (os.wait4) and the worker process's (VmHWM, a fresh worker per row).
The engine's answer is checked against the numpy engine before a time is reported.

    python benchmarks/bench_spice.py [--sizes 64 128 256] [--cells 1R 1S1R] [--repeat 3]
    python benchmarks/bench_spice.py --large          # also 512x512 and 1024x1024 1R (to completion or refusal)
    python benchmarks/bench_spice.py --sizes --large --large-sizes 512   # only 512x512
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.devices import SinhSelector
from circuitsim.spice.worker import SpiceError, SpiceWorker


def bare_ngspice(deck_path: Path) -> tuple[float, float, int]:
    """(wall time [s], peak RSS [MB], exit code) of `ngspice -b -r` on the deck."""
    raw = deck_path.with_suffix(".raw")
    start = time.perf_counter()
    proc = subprocess.Popen(["ngspice", "-b", "-r", str(raw), str(deck_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a live process [MB]."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def design(n: int, cell: str, rng) -> circuitsim.Crossbar:
    return circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=2.0, r_col=2.0,
                               selector=SinhSelector() if cell == "1S1R" else None)


def check(res, xb, v) -> float:
    """Largest relative deviation of the spice engine's column currents from the numpy engine's."""
    exact = circuitsim.simulate(xb, v, engine="numpy").column_currents
    error = float(np.max(np.abs(res.column_currents - exact) / np.abs(exact)))
    if error > 1e-6:
        raise AssertionError(f"spice and numpy disagree by {error:.2e}")
    return error


def side_by_side(cells, sizes, repeat: int, tmp: Path) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'cells':>5} {'size':>9} {'ngspice -b':>11} {'spice eng':>10} {'ratio':>6} {'ngspice RSS':>12} "
          f"{'worker RSS':>11} {'vs numpy':>9}")
    for cell in cells:
        for n in sizes:
            xb = design(n, cell, rng)
            v = rng.uniform(0.2, 1.0, n)
            deck = tmp / f"{cell}_{n}.cir"
            deck.write_text(circuitsim.netlist(xb, v))
            with SpiceWorker(timeout_s=3600) as worker:
                first = circuitsim.simulate(xb, v, engine="spice", worker=worker)  # warm: ngspice loaded
                bare, engine = [], []
                for _ in range(repeat):  # alternate, so both see the same background load
                    t, rss_bare, code = bare_ngspice(deck)
                    if code:
                        raise RuntimeError(f"ngspice -b failed on {deck} (exit {code})")
                    bare.append(t)
                    start = time.perf_counter()
                    circuitsim.simulate(xb, v, engine="spice", worker=worker)
                    engine.append(time.perf_counter() - start)
                rss_worker = peak_rss_mb(worker.pid)
            row = {"cells": cell, "size": n, "bare_s": min(bare), "engine_s": min(engine),
                   "ratio": min(engine) / min(bare), "bare_rss_mb": rss_bare, "worker_rss_mb": rss_worker,
                   "error": check(first, xb, v)}
            rows.append(row)
            print(f"{cell:>5} {f'{n}x{n}':>9} {row['bare_s']:>10.3f}s {row['engine_s']:>9.3f}s {row['ratio']:>6.2f} "
                  f"{rss_bare:>9.0f} MB {rss_worker:>8.0f} MB {row['error']:>9.1e}", flush=True)
    return rows


def large(sizes, tmp: Path) -> None:
    """1R arrays in the spice engine (a fresh worker each) and the ngspice program, to completion
    or to a refusal: time and peak RSS either way."""
    rng = np.random.default_rng(1)
    print(f"\n{'cells':>5} {'size':>11} {'spice eng':>10} {'worker RSS':>11} {'ngspice -b':>11} {'ngspice RSS':>12}")
    for n in sizes:
        xb = design(n, "1R", rng)
        v = rng.uniform(0.2, 1.0, n)
        deck = tmp / f"large_{n}.cir"
        deck.write_text(circuitsim.netlist(xb, v))
        outcome = "ok"
        with SpiceWorker(timeout_s=6 * 3600) as worker:
            start = time.perf_counter()
            try:
                res = circuitsim.simulate(xb, v, engine="spice", worker=worker)
            except SpiceError as exc:
                outcome = f"engine refused: {str(exc).split(': ', 1)[1][:100]}"
            engine = time.perf_counter() - start
            rss_worker = peak_rss_mb(worker.pid)
        if outcome == "ok":
            assert np.all(np.isfinite(res.column_currents)) and np.all(res.column_currents > 0)
        bare, rss_bare, code = bare_ngspice(deck)
        if code:
            outcome += f"; ngspice -b exit {code}"
        print(f"{'1R':>5} {f'{n}x{n}':>11} {engine:>9.1f}s {rss_worker:>8.0f} MB {bare:>10.1f}s {rss_bare:>9.0f} MB "
              f"{outcome}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256], help="none: only --large")
    parser.add_argument("--cells", nargs="+", choices=("1R", "1S1R"), default=["1R", "1S1R"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also run 1R 512x512 and 1024x1024 to completion")
    parser.add_argument("--large-sizes", type=int, nargs="+", default=[512, 1024])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        side_by_side(args.cells, args.sizes, args.repeat, Path(tmp))
        if args.large:
            large(args.large_sizes, Path(tmp))


if __name__ == "__main__":
    main()
