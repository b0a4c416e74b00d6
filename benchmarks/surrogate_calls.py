"""Second-call time of simulate(engine="surrogate") alone, batch 100: for comparing two checkouts.

No SPICE and no exact engine, so a run takes seconds; run it alternately with PYTHONPATH at each
checkout to compare code before and after a change side by side (docs/guide/surrogate.md):

    cd benchmarks && PYTHONPATH=/path/to/checkout python surrogate_calls.py --size 64 --r-wire 2

Prints wall and CPU time per call (best and median of --calls; on a shared machine the CPU time
is the steadier one) and the process's peak RSS (everything it held, from the import on).
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import circuitsim
from circuitsim.devices.selectors import SinhSelector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--r-wire", type=float, default=2.0, help="row and column wire segments [Ω]")
    parser.add_argument("--calls", type=int, default=15)
    args = parser.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=args.r_wire, r_col=args.r_wire,
                             selector=SinhSelector())
    v = rng.uniform(0, 0.79, (100, n)) * (rng.random((100, n)) < 0.7)
    circuitsim.simulate(xb, v, engine="surrogate", fallback=False)     # prepares the design
    walls, cpus = [], []
    for _ in range(args.calls):
        start, cpu = time.perf_counter(), time.process_time()
        circuitsim.simulate(xb, v, engine="surrogate", fallback=False)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{circuitsim.__file__}: {n}x{n} {args.r_wire} Ω, batch 100, second call: "
          f"wall best {1e3 * min(walls):.2f} ms, median {1e3 * np.median(walls):.2f} ms; "
          f"CPU best {1e3 * min(cpus):.2f} ms, median {1e3 * np.median(cpus):.2f} ms per call; "
          f"peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
