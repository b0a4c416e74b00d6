"""Side-by-side timing of the engines on random crossbars, one run, ratios printed.

For each size: the spice engine end to end (deck, worker IPC, results), ngspice's own
analysis time (`ngspice -b` with .options acct: parsing + .op, the peer at its best),
the numpy engine, and badcrossbar for linear arrays; per single input vector and per
vector within a batch. Answers are checked to agree before a time is reported.

    .venv/bin/python benchmarks/bench_core.py [--sizes 8 16 32 64 128] [--batch 50] [--cell 1R|1S1R]
"""
from __future__ import annotations

import argparse
import logging
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.devices import SinhSelector
from circuitsim.spice.worker import SpiceWorker


def best_of(fn, repeat: int) -> float:
    """Smallest wall time of `repeat` calls [s] (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ngspice_own_time(deck: str) -> float:
    """ngspice's own netlist loading + parsing + analysis time [s] for one .op deck (ngspice -b, acct)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.cir"
        path.write_text(deck.replace(".options klu", ".options klu acct", 1))
        out = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True, timeout=600).stdout

    def field(name):
        return float(re.search(rf"{name}[^=]*=\s*([0-9.eE+-]+)", out).group(1))

    return field("Netlist loading time") + field("Netlist parsing time") + field("Total analysis time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--cell", choices=("1R", "1S1R"), default="1R")
    parser.add_argument("--spice-limit-s", type=float, default=60.0, help="skip SPICE batches slower than this")
    args = parser.parse_args()
    logging.getLogger("badcrossbar").setLevel(logging.WARNING)
    import badcrossbar

    rng = np.random.default_rng(0)
    print(f"{args.cell} arrays, r_row = r_col = 2 Ω, batch of {args.batch} input vectors; times are per input vector")
    print(f"{'size':>5} {'ngspice':>9} {'spice eng':>9} {'numpy':>9} {'badxbar':>9} | {'ngspice':>9} "
          f"{'spice eng':>9} {'numpy':>9} {'badxbar':>9} | {'ngsp/np':>8} {'ngsp/np':>8} {'bx/np':>6} {'bx/np':>6}")
    print(f"{'':>5} {'single vector [s]':^39} | {'within a batch [s]':^39} | {'single':>8} {'batch':>8} "
          f"{'single':>6} {'batch':>6}")
    with SpiceWorker() as worker:
        for n in args.sizes:
            g = rng.uniform(1e-6, 1e-4, (n, n))
            xb = circuitsim.Crossbar(conductance=g, r_row=2.0, r_col=2.0,
                                     selector=SinhSelector() if args.cell == "1S1R" else None)
            v = rng.uniform(0.2, 1.0, (args.batch, n))
            exact = circuitsim.simulate(xb, v, engine="numpy").column_currents
            spice_one = circuitsim.simulate(xb, v[0], engine="spice", worker=worker).column_currents
            assert np.max(np.abs(spice_one - exact[0])) < 1e-6 * np.max(np.abs(exact[0])), "spice and numpy disagree"
            repeat = 3 if n <= 64 else 1
            t_np1 = best_of(lambda: circuitsim.simulate(xb, v[0], engine="numpy"), repeat)
            t_npb = best_of(lambda: circuitsim.simulate(xb, v, engine="numpy"), repeat) / args.batch
            t_sp1 = best_of(lambda: circuitsim.simulate(xb, v[0], engine="spice", worker=worker), repeat)
            t_ng1 = min(ngspice_own_time(circuitsim.netlist(xb, v[0])) for _ in range(repeat))
            t_spb = np.nan
            if t_sp1 * args.batch < args.spice_limit_s:
                t_spb = best_of(lambda: circuitsim.simulate(xb, v, engine="spice", worker=worker), 1) / args.batch
            t_bx1 = t_bxb = np.nan
            if args.cell == "1R":
                theirs = badcrossbar.compute(v.T, 1 / g, r_i=2.0, node_voltages=False, all_currents=False)
                assert np.max(np.abs(theirs.currents.output - exact)) < 1e-9 * np.max(np.abs(exact))
                t_bx1 = best_of(lambda: badcrossbar.compute(v[:1].T, 1 / g, r_i=2.0, node_voltages=False,
                                                            all_currents=False), repeat)
                t_bxb = best_of(lambda: badcrossbar.compute(v.T, 1 / g, r_i=2.0, node_voltages=False,
                                                            all_currents=False), repeat) / args.batch
            # ngspice at its best per batch vector: its own time per vector (it re-solves every vector)
            print(f"{n:>5} {t_ng1:9.4f} {t_sp1:9.4f} {t_np1:9.4f} {t_bx1:9.4f} | {t_ng1:9.4f} {t_spb:9.4f} "
                  f"{t_npb:9.5f} {t_bxb:9.5f} | {t_ng1 / t_np1:8.1f} {t_ng1 / t_npb:8.1f} {t_bx1 / t_np1:6.2f} "
                  f"{t_bxb / t_npb:6.2f}", flush=True)


if __name__ == "__main__":
    main()
