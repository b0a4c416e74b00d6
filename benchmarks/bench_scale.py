"""Where the numpy engine's time goes on nonlinear (1S1R, 1T1R) batches: CPU time and calls per stage.

Wraps the solver's stages (the cell-current solves, cell solves, preconditioner factorizations
and solves, GMRES, Newton steps) with counters for one `simulate(engine="numpy")` call, in this process:

    .venv/bin/python benchmarks/bench_scale.py [--cell 1S1R] [--n 64] [--batch 100]

Stages nest (GMRES calls preconditioner solves), so their
times add up to more than the total. CPU time, not wall time: the machine is shared.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from contextlib import ExitStack
from unittest import mock

import numpy as np

import circuitsim
from circuitsim import engines
from circuitsim.devices import NmosAccess, SinhSelector
from circuitsim.solver import currents, dc, ordering

CELLS = {"1S1R": {"selector": SinhSelector()}, "1T1R": {"transistor": NmosAccess()}}
STAGES = {  # name: (object, attribute)
    "system set-up": (dc._ReducedSystem, "__init__"),
    "cell currents (1S1R, sinh)": (currents.SinhCurrents, "solve"),
    "cell currents (1T1R)": (currents.TransistorCurrents, "solve"),
    "start (array linearized at 0 V)": (dc._ReducedSystem, "start"),
    "Newton": (dc._ReducedSystem, "newton"),
    "KCL check": (dc, "_check_kcl"),
    "source currents": (dc, "leaving_currents"),
    "result record": (engines, "extract"),
    "Newton steps (line searches)": (dc._ReducedSystem, "_line_search"),
    "GMRES solves": (dc, "_gmres"),
    "preconditioner factorizations": (dc, "factorize"),
    "preconditioner solves (Cholesky)": (ordering.OrderedCholesky, "solve"),
    "preconditioner solves (SuperLU)": (ordering.OrderedLU, "solve"),
    "Jacobian products (cell stamps)": (dc._ReducedSystem, "_apply_stamps"),
    "cell solves (inner nodes, device laws compiled in)": (dc, "solve_cells"),
}


def counted(stats: dict, name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            stats[name][0] += 1
            stats[name][1] += time.process_time() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=list(CELLS), default="1S1R")
    parser.add_argument("--n", type=int, default=64, help="rows = columns")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (args.n, args.n)), r_row=2.0, r_col=2.0,
                             **CELLS[args.cell])
    v = rng.uniform(0.2, 1.0, (args.batch, args.n))
    stats = defaultdict(lambda: [0, 0.0])
    with ExitStack() as stack:
        for name, (owner, attribute) in STAGES.items():
            stack.enter_context(mock.patch.object(owner, attribute, counted(stats, name, getattr(owner, attribute))))
        start = time.process_time()
        circuitsim.simulate(xb, v, engine="numpy")
        total = time.process_time() - start
    print(f"{args.cell} {args.n}x{args.n}, batch {args.batch}: {total:.3f} s CPU "
          f"({1e3 * total / args.batch:.2f} ms per vector)")
    for name in STAGES:
        calls, seconds = stats[name]
        if calls:
            print(f"  {name:<34} {calls:6d} calls {seconds:8.3f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()
