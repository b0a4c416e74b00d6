"""Second simulate() call on the same Crossbar with the cached circuit against a rebuilt one.

"rebuild" clears the circuit cache before the call, which is what every call cost before the
cache; "cached" reuses the circuit of the warm-up call. The two alternate call by call in one child
process per case (both see the same machine load; its peak RSS is the row's); "circuit MB" is what
the cache holds for the design beyond it.

    .venv/bin/python benchmarks/bench_circuit_cache.py [--cases surrogate-64 numpy-1R-1024] [--calls 5]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

import circuitsim
from circuitsim.circuit import build_circuit, circuit_bytes, clear_circuit_cache, make_drive
from circuitsim.devices import SinhSelector

# name: (size n for n×n, cell keywords, engine, batch)
CASES = {
    "surrogate-64": (64, {"selector": SinhSelector()}, "surrogate", 100),
    "surrogate-256": (256, {"selector": SinhSelector()}, "surrogate", 100),
    "numpy-1R-256": (256, {}, "numpy", 1),
    "numpy-1R-1024": (1024, {}, "numpy", 1),
}


def _child(case: str, calls: int) -> dict:
    n, cell, engine, batch = CASES[case]
    rng = np.random.default_rng(0)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=2.0, r_col=2.0, **cell)
    v = rng.uniform(0, 0.79, (batch, n)) * (rng.random((batch, n)) < 0.7)
    options = {"fallback": False} if engine == "surrogate" else {}
    circuitsim.simulate(xb, v, engine=engine, **options)  # warm-up: prepares the design
    circuit = make_drive(xb, v[0]).circuit
    start = time.perf_counter()
    build_circuit(xb, circuit.floating_rows, circuit.floating_cols)
    build_s = time.perf_counter() - start
    seconds = {"rebuild": [], "cached": []}
    for _ in range(calls):
        for mode, times in seconds.items():
            if mode == "rebuild":
                clear_circuit_cache()
            start = time.perf_counter()
            circuitsim.simulate(xb, v, engine=engine, **options)
            times.append(time.perf_counter() - start)
    return {"median_s": {mode: float(np.median(times)) for mode, times in seconds.items()},
            "build_s": build_s, "circuit_mb": circuit_bytes(circuit) / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.calls)))
        return
    print(f"{'case':<16}{'rebuild ms':>12}{'cached ms':>12}{'ratio':>8}{'build ms':>10}{'peak RSS MB':>13}"
          f"{'circuit MB':>12}"
          f"   (medians of {args.calls} calls each)")
    for case in args.cases:
        out = subprocess.run([sys.executable, __file__, "--calls", str(args.calls), "--child", case],
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out.splitlines()[-1])
        old, new = row["median_s"]["rebuild"], row["median_s"]["cached"]
        print(f"{case:<16}{1e3 * old:>12.2f}{1e3 * new:>12.2f}{old / new:>8.2f}{1e3 * row['build_s']:>10.1f}"
              f"{row['peak_rss_mb']:>13.0f}"
              f"{row['circuit_mb']:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
