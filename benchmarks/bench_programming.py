"""One write pulse on an array: the quasi-static pulse model against full array transients, side
by side in one run (ratios printed), and the write-verify of one whole tile.

For each size, one row pulse on a 1T1R Stanford-PKU array (2 Ω wires, V/2): the quasi-static
model (circuitsim.programming.pulses.apply_pulse), the numpy array transient (dense Newton +
LSODA) and the ngspice array transient (KLU, warm worker), with their largest state difference
checked before a time is reported, and the peak RSS of this process after each.

    .venv/bin/python benchmarks/bench_programming.py [--sizes 4 8 16] [--tile 32] [--transient-limit 16]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import circuitsim
from circuitsim.devices import NmosAccess, StanfordPKU
from circuitsim.programming import WriteVerify, program_array
from circuitsim.programming.pulses import CellModels, apply_pulse, apply_pulse_transient, write_bias
from circuitsim.spice.worker import SpiceWorker

WIDTH_S = 1e-8
WV = WriteVerify(v_set_start=1.7, v_set_step=0.05, v_set_max=3.0, v_reset_start=1.3, v_reset_step=0.03,
                 v_reset_max=2.2, width_s=WIDTH_S, v_read=0.1, tolerance=0.05, v_gate_set=1.8, v_gate_reset=3.0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--tile", type=int, default=32, help="size of the tile programmed by write-verify (0: skip)")
    parser.add_argument("--transient-limit", type=int, default=16, help="largest size run as full transients")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'size':>5} {'quasi-static':>13} {'numpy tran':>11} {'spice tran':>11} {'numpy/qs':>9} {'spice/qs':>9} "
          f"{'max |dx| diff':>14} {'peak RSS MB':>12}")
    with SpiceWorker(timeout_s=600) as worker:
        for n in args.sizes:
            xb = circuitsim.Crossbar(conductance=np.ones((n, n)), r_row=2.0, r_col=2.0, transistor=NmosAccess())
            models = CellModels(StanfordPKU(), (n, n))
            states = rng.uniform(0.7, 0.9, (n, n))
            amplitudes = np.where(np.arange(n) % 2 == 0, rng.uniform(2.2, 2.5, n), 0.0)
            bias = write_bias((n, n), n // 2, amplitudes, "v/2", v_gate=2.0)
            quasi, t_q = timed(lambda: apply_pulse(xb, models, states, bias, WIDTH_S, WIDTH_S / 100))
            row = f"{n:>5} {t_q:>12.3f}s"
            if n <= args.transient_limit:
                exact, t_n = timed(lambda: apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100,
                                                                 engine="numpy"))
                apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100, engine="spice", worker=worker)
                spice, t_s = timed(lambda: apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100,
                                                                 engine="spice", worker=worker))
                diff = max(np.abs(quasi.states - spice.states).max(), np.abs(exact.states - spice.states).max())
                row += f" {t_n:>10.3f}s {t_s:>10.3f}s {t_n / t_q:>8.1f}x {t_s / t_q:>8.1f}x {diff:>14.2e}"
            else:
                row += f" {'-':>11} {'-':>11} {'-':>9} {'-':>9} {'-':>14}"
            print(row + f" {peak_rss_mb():>12.0f}", flush=True)
    if args.tile:
        n = args.tile
        xb = circuitsim.Crossbar(conductance=np.ones((n, n)), r_row=2.0, r_col=2.0, transistor=NmosAccess())
        target = rng.uniform(1e-5, 1e-4, (n, n))
        res, t = timed(lambda: program_array(xb, StanfordPKU(x0=0.9), target, WV))
        print(f"write-verify of a {n}x{n} 1T1R Stanford-PKU tile (row order, V/2, targets 10-100 uS): {t:.1f} s wall, "
              f"{res.n_pulses} pulse events, {res.pulses.sum()} cell pulses ({res.pulses.mean():.1f} per cell), "
              f"{res.total_energy_j * 1e9:.2f} nJ, {res.time_s * 1e6:.1f} us of pulses and verifies, "
              f"{int(res.failed.sum())} failed, peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
