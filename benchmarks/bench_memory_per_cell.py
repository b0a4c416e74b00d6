"""Peak memory per cell of a numpy-engine solve (and of rendering the netlist), the figure
behind validate.SOLVE_BYTES_PER_CELL (the size limit of docs/design-files.md).

Each case runs in a fresh process, so ru_maxrss is that solve's peak: peak RSS minus the RSS
before the solve, divided by rows x cols. One input vector, 2 Ω wires, cells uniform in 1-100 µS.

    .venv/bin/python benchmarks/bench_memory_per_cell.py [--sizes 256 512]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

import circuitsim
from circuitsim.devices import SinhSelector


def measure(n: int, cell: str, what: str) -> None:
    """Print one table row: the solve (or netlist) of an n x n array of `cell` cells."""
    g = np.random.default_rng(0).uniform(1e-6, 1e-4, (n, n))
    xb = circuitsim.Crossbar(conductance=g, r_row=2.0, r_col=2.0, selector=SinhSelector() if cell == "1S1R" else None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    if what == "netlist":
        circuitsim.netlist(xb, np.full(n, 0.3))
    else:
        circuitsim.simulate(xb, np.full(n, 0.3), engine="numpy")
    seconds = time.perf_counter() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    print(f"| {what} {cell} {n}x{n} | {n * n:,} | {grown / 1e6:.0f} MB | {grown / n / n:.0f} B | {seconds:.1f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # one measurement, in a child process
    args = parser.parse_args()
    if args.case:
        measure(int(args.case[0]), args.case[1], args.case[2])
        return
    print("| case | cells | peak RSS growth | per cell | time |\n|---|---|---|---|---|", flush=True)
    cases = [(n, cell, "numpy") for cell in ("1R", "1S1R") for n in args.sizes] + [(args.sizes[0], "1R", "netlist")]
    for n, cell, what in cases:
        subprocess.run([sys.executable, __file__, "--case", str(n), cell, what], check=True)


if __name__ == "__main__":
    main()
