"""Programming speed: one write pulse on the quasi-static model against full array transients,
and the write-verify of the whole digits network, rows concurrent against one after another,
side by side in one run (ratios printed), with peak RSS.

Part 1, for each size: one row pulse on a 1T1R Stanford-PKU array (2 Ω wires, V/2): the
quasi-static model (circuitsim.programming.pulses.apply_pulse), the numpy array transient (dense
Newton + LSODA) and the ngspice array transient (KLU, warm worker), with their largest state
difference checked before a time is reported.
Part 2: every tile of the digits MLP (16 hidden units, 32x32 tiles, 8 levels) programmed by
write-verify into 1T1R Stanford-PKU arrays (the demo's algorithm), with concurrent_rows on and
off; wall and CPU time of each, and the largest conductance difference between the two.

    .venv/bin/python benchmarks/bench_programming.py [--sizes 4 8 16] [--transient-limit 16] [--no-network]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import circuitsim
from circuitsim import nn
from circuitsim.demo import DEMO_WRITE_VERIFY, R_WIRE_OHM
from circuitsim.devices import NmosAccess, StanfordPKU
from circuitsim.programming import WriteVerify
from circuitsim.programming.network import program_network
from circuitsim.programming.pulses import CellModels, apply_pulse, apply_pulse_transient, write_bias
from circuitsim.spice.worker import SpiceWorker

WIDTH_S = 1e-8


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def pulses(sizes: list[int], transient_limit: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'size':>5} {'quasi-static':>13} {'numpy tran':>11} {'spice tran':>11} {'numpy/qs':>9} {'spice/qs':>9} "
          f"{'max |dx| diff':>14} {'peak RSS MB':>12}")
    with SpiceWorker(timeout_s=600) as worker:
        for n in sizes:
            xb = circuitsim.Crossbar(conductance=np.ones((n, n)), r_row=2.0, r_col=2.0, transistor=NmosAccess())
            models = CellModels(StanfordPKU(), (n, n))
            states = rng.uniform(0.7, 0.9, (n, n))
            amplitudes = np.where(np.arange(n) % 2 == 0, rng.uniform(2.2, 2.5, n), 0.0)
            bias = write_bias((n, n), n // 2, amplitudes, "v/2", v_gate=2.0)
            quasi, t_q, _ = timed(lambda: apply_pulse(xb, models, states, bias, WIDTH_S, WIDTH_S / 100))
            row = f"{n:>5} {t_q:>12.3f}s"
            if n <= transient_limit:
                exact, t_n, _ = timed(lambda: apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100,
                                                                    engine="numpy"))
                apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100, engine="spice", worker=worker)
                spice, t_s, _ = timed(lambda: apply_pulse_transient(xb, models, states, bias, WIDTH_S, WIDTH_S / 100,
                                                                    engine="spice", worker=worker))
                diff = max(np.abs(quasi.states - spice.states).max(), np.abs(exact.states - spice.states).max())
                row += f" {t_n:>10.3f}s {t_s:>10.3f}s {t_n / t_q:>8.1f}x {t_s / t_q:>8.1f}x {diff:>14.2e}"
            else:
                row += f" {'-':>11} {'-':>11} {'-':>9} {'-':>9} {'-':>14}"
            print(row + f" {peak_rss_mb():>12.0f}", flush=True)


def network() -> None:
    data = nn.load_digits_split()
    net = nn.train_mlp(data, hidden=16)
    hw = nn.Hardware(g_min_s=10e-6, g_max_s=100e-6, levels=8, tile_rows=32, tile_cols=32, r_wire=R_WIRE_OHM)
    mapped = nn.map_network(net, hw, data.x_train)
    wv = WriteVerify(**DEMO_WRITE_VERIFY)
    runs = {}
    for concurrent in (True, False):
        runs[concurrent] = timed(lambda c=concurrent: program_network(mapped, StanfordPKU(x0=0.9), wv,
                                                                      transistor=NmosAccess(), concurrent_rows=c))
        p, wall, cpu = runs[concurrent]
        s = p.summary
        print(f"digits network, rows {'concurrent' if concurrent else 'one after another'}: {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU; {s['cells']} cells, {s['pulses']} cell pulses, {s['pulse_events']} row pulses, "
              f"{1e9 * s['energy_j']:.1f} nJ, {1e3 * s['time_s']:.3f} ms of pulses and verifies, {s['failed']} failed; "
              f"peak RSS {peak_rss_mb():.0f} MB", flush=True)
    g = [np.concatenate([t.result.conductance_s.ravel() for t in runs[c][0].all_tiles()]) for c in (True, False)]
    print(f"one after another / concurrent: {runs[False][1] / runs[True][1]:.1f}x wall, "
          f"{runs[False][2] / runs[True][2]:.1f}x CPU; "
          f"largest conductance difference {np.abs(g[0] / g[1] - 1).max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--transient-limit", type=int, default=4, help="largest size run as full transients")
    parser.add_argument("--no-network", action="store_true", help="skip programming the digits network")
    args = parser.parse_args()
    pulses(args.sizes, args.transient_limit)
    if not args.no_network:
        network()


if __name__ == "__main__":
    main()
