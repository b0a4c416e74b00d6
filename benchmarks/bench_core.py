"""The numpy engine's scale goals against its peers, side by side in one run, ratios printed.

Every measurement runs in a fresh child process, so each row's peak memory (RSS) is its own:
the numpy engine (`simulate(engine="numpy")`, column currents), ngspice 46 with KLU at its
best (`ngspice -b` on the engine's own deck for one vector: its loading + parsing + analysis
time from `.options acct`; it re-solves every vector, so that is its time per vector, and its
peak RSS), and badcrossbar for linear arrays (`badcrossbar.compute` on the whole batch).
Answers are checked against each other before a time is reported.

Each engine gets a wall time and a CPU time (the process's own; ngspice's whole child process).
On a shared machine the wall times of two runs see different loads (ngspice's acct times are
wall times too); the CPU times do not, so their ratio is the one to compare.

    .venv/bin/python benchmarks/bench_core.py [--rows NAME ...] [--repeat 3] [--no-ngspice] [--no-badcrossbar]

Sizes of 512² and more are timed once (a single run), smaller ones best of --repeat.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.devices import NmosAccess, SinhSelector

CELLS = {"1R": {}, "1S1R": {"selector": SinhSelector()}, "1T1R": {"transistor": NmosAccess()}}
# name: (cell type, size n for n×n, batch of input vectors, goal)
ROWS = {
    "1R-1024": ("1R", 1024, 1, "<= 10 s, <= 3 GB"),
    "1R-2048": ("1R", 2048, 1, "runs within 16 GB"),
    "1R-256-b1000": ("1R", 256, 1000, "<= 1 s"),
    "1S1R-64-b100": ("1S1R", 64, 100, ">= 100x ngspice per vector"),
    "1S1R-256-b100": ("1S1R", 256, 100, ">= 100x ngspice per vector"),
    "1T1R-64-b100": ("1T1R", 64, 100, ">= 100x ngspice per vector"),
    "1T1R-256-b100": ("1T1R", 256, 100, ">= 100x ngspice per vector"),
    "1S1R-1024": ("1S1R", 1024, 1, "<= 60 s"),
    "1T1R-1024": ("1T1R", 1024, 1, "as 1S1R: <= 60 s"),
}
R_WIRE_OHM = 2.0


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Smallest wall time and smallest CPU time of `repeat` calls [s] (the least disturbed by other load)."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def design(cell: str, n: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=R_WIRE_OHM, r_col=R_WIRE_OHM,
                             **CELLS[cell])
    return xb, rng.uniform(0.2, 1.0, (batch, n))


def ngspice_batch(deck: str) -> tuple[float, list[str], np.ndarray]:
    """Run a deck with `ngspice -b`: its own loading + parsing + analysis time [s] (from `.options acct`),
    and its raw file's vector names and values (points, vectors)."""
    with tempfile.TemporaryDirectory() as tmp:
        path, raw = Path(tmp) / "bench.cir", Path(tmp) / "bench.raw"
        path.write_text(deck.replace(".options klu", ".options klu acct", 1))
        out = subprocess.run(["ngspice", "-b", "-r", str(raw), str(path)], capture_output=True, text=True,
                             timeout=7200).stdout
        header, data = raw.read_bytes().split(b"Binary:\n", 1)
    names = [line.split()[1] for line in header.decode().split("Variables:\n", 1)[1].splitlines()]
    values = np.frombuffer(data, dtype="<f8").reshape(-1, len(names))

    def field(name):
        return float(re.search(rf"{name}[^=]*=\s*([0-9.eE+-]+)", out).group(1))

    return field("Netlist loading time") + field("Netlist parsing time") + field("Total analysis time"), names, values


def ngspice_run(deck: str) -> tuple[float, dict]:
    """ngspice's own time [s] for one .op deck, and its operating point."""
    seconds, names, values = ngspice_batch(deck)
    return seconds, dict(zip(names, values[0].tolist()))


def measure(engine: str, cell: str, n: int, batch: int, repeat: int) -> dict:
    """One engine on one row, in this (child) process: wall and CPU seconds, peak RSS, the first vector's
    column currents."""
    xb, v = design(cell, n, batch)
    repeat = repeat if n < 512 else 1
    if engine == "numpy":
        out = {}
        seconds, cpu_s = best_of(lambda: out.update(i=circuitsim.simulate(xb, v, engine="numpy").column_currents[0]),
                                 repeat)
        rss_kb, currents = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, out["i"]
    elif engine == "badcrossbar":
        logging.getLogger("badcrossbar").setLevel(logging.WARNING)
        import badcrossbar

        out = {}
        seconds, cpu_s = best_of(lambda: out.update(i=badcrossbar.compute(
            v.T, 1 / xb.conductance, r_i=R_WIRE_OHM, node_voltages=False, all_currents=False).currents.output),
            repeat)
        rss_kb, currents = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, np.atleast_2d(out["i"])[0]
    else:
        deck = circuitsim.netlist(xb, v[0])
        runs = []
        for _ in range(repeat):
            before = children_cpu_s()
            runs.append((*ngspice_run(deck), children_cpu_s() - before))
        seconds, values, _ = min(runs, key=lambda run: run[0])
        seconds *= batch  # it re-solves every vector
        cpu_s = min(run[2] for run in runs) * batch
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        sense = xb.r_col[-1, :] + xb.r_sense
        currents = np.array([values[f"v(b{n - 1}c{j})"] for j in range(n)]) / sense
    return {"seconds": seconds, "cpu_s": cpu_s, "rss_gb": rss_kb / 1e6, "currents": np.asarray(currents).tolist()}


def run_child(args: list[str], label: str, timeout_s: float) -> dict | None:
    """Run one measurement in a fresh child process (its peak RSS is its own) and read the JSON on its
    last stdout line; None, with a line saying why, when it fails or gives no answer within timeout_s."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=True)
    except subprocess.TimeoutExpired:
        print(f"  {label}: no answer within {timeout_s:.0f} s", flush=True)
        return None
    except subprocess.CalledProcessError as exc:
        print(f"  {label} failed: {(exc.stderr.strip().splitlines() or ['killed'])[-1]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(engine: str, row: str, repeat: int, timeout_s: float) -> dict | None:
    result = run_child([sys.executable, __file__, "--measure", engine, row, "--repeat", str(repeat)],
                       f"{engine} on {row}", timeout_s)
    if result is not None:
        print(f"  {engine} on {row}: {result['seconds']:.3f} s wall, {result['cpu_s']:.3f} s CPU, "
              f"{result['rss_gb']:.2f} GB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="per engine and row")
    parser.add_argument("--no-ngspice", action="store_true", help="leave ngspice out (rows at 1024² take it long)")
    parser.add_argument("--no-badcrossbar", action="store_true", help="leave badcrossbar out (slow on large batches)")
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "ROW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        engine, row = args.measure
        cell, n, batch, _ = ROWS[row]
        print(json.dumps(measure(engine, cell, n, batch, args.repeat)))
        return

    print(f"random n×n arrays, cells 1-100 µS, r_row = r_col = {R_WIRE_OHM} Ω; times for the whole batch "
          "(wall / CPU), ngspice's = its time for one vector × batch; peak RSS per engine and row")
    print(f"{'row':<14} {'goal':<27} {'numpy [s]':>15} {'GB':>5} {'ngspice [s]':>17} {'GB':>5} "
          f"{'badxbar [s]':>15} {'GB':>5} {'ngsp/np':>13} {'bx/np':>11}")
    for row in args.rows:
        cell, n, batch, goal = ROWS[row]
        engines = (["numpy"] + ([] if args.no_ngspice else ["ngspice"])
                   + (["badcrossbar"] if cell == "1R" and not args.no_badcrossbar else []))
        got = {e: child(e, row, args.repeat, args.timeout_s) for e in engines}
        mine = got["numpy"]
        if mine is None:
            continue
        for peer in ("ngspice", "badcrossbar"):
            if got.get(peer):
                ref, ours = np.array(got[peer]["currents"]), np.array(mine["currents"])
                error = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
                assert error < 1e-6, f"{row}: numpy and {peer} disagree by {error:.2g}"

        def cols(e, width):
            r = got.get(e)
            return (f"{r['seconds']:.2f} / {r['cpu_s']:.2f}".rjust(width) + f" {r['rss_gb']:5.2f}" if r
                    else f"{'-':>{width}} {'-':>5}")

        def ratio(e, width):
            r = got.get(e)
            return (f"{r['seconds'] / mine['seconds']:.1f} / {r['cpu_s'] / mine['cpu_s']:.1f}".rjust(width) if r
                    else f"{'-':>{width}}")

        print(f"{row:<14} {goal:<27} {cols('numpy', 15)} {cols('ngspice', 17)} {cols('badcrossbar', 15)} "
              f"{ratio('ngspice', 13)} {ratio('badcrossbar', 11)}", flush=True)


if __name__ == "__main__":
    main()
