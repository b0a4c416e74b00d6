"""Sweep throughput on 1 and 2 local worker processes, side by side in one run, ratio printed.

Each round runs the same SPICE sweep (1S1R arrays, fresh store each time) once with 1 worker
and once with 2; rounds alternate so background load hits both alike. Two rates are given:
end to end (points / wall time, including starting the pool and its ngspice processes) and
steady (points written after the first one / time between the first and the last write).
Peak memory (RSS) of the sweep process and of the largest worker process is printed beside.

    .venv/bin/python benchmarks/bench_sweep.py [--points 24] [--size 24] [--rounds 2]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import tomllib
from pathlib import Path

import numpy as np

from circuitsim.store import read_points
from circuitsim.sweep import run_sweep


def sweep_config(points: int, size: int) -> dict:
    """The example sweep's design, resized, with `points` seeds of the conductance draw as its axis."""
    doc = tomllib.loads((Path(__file__).resolve().parents[1] / "examples" / "sweep.toml").read_text())
    doc["sweep"].pop("metrics")
    doc["array"].update(rows=size, cols=size)
    doc["axes"] = {"array.seed": list(range(points))}
    return doc


def one_run(config: dict, out: Path, workers: int) -> tuple[float, float]:
    """(end-to-end, steady) throughput [points/s] of one sweep into a new file."""
    summary = run_sweep(config, out, workers=workers, progress=False, log=lambda _: None)
    if summary.failed:
        raise RuntimeError(f"{summary.failed} points failed")
    written = np.sort(read_points(out)["written_unix_s"])
    return summary.ok / summary.wall_s, (len(written) - 1) / (written[-1] - written[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--size", type=int, default=24, help="rows = cols of each array")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = sweep_config(args.points, args.size)
        rates: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for r in range(args.rounds):
            for workers in (1, 2):
                rates[workers].append(one_run(config, Path(tmp) / f"r{r}w{workers}.h5", workers))
    print(f"# {args.points} SPICE points (examples/sweep.toml design at {args.size}x{args.size}); "
          f"best of {args.rounds} rounds [points/s]")
    print(f"{'workers':>8} {'end-to-end':>11} {'steady':>8}")
    best = {w: (max(e for e, _ in v), max(s for _, s in v)) for w, v in rates.items()}
    for workers, (e2e, steady) in best.items():
        print(f"{workers:>8} {e2e:>11.2f} {steady:>8.2f}")
    print(f"{'2 vs 1':>8} {best[2][0] / best[1][0]:>10.2f}x {best[2][1] / best[1][1]:>7.2f}x")
    own, child = (resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak RSS: sweep process {own:.0f} MB, largest worker process {child:.0f} MB")


if __name__ == "__main__":
    main()
