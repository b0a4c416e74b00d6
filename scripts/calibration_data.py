"""Run the surrogate's calibration sweep (a TOML file) with ngspice into a results store.

    .venv/bin/python scripts/calibration_data.py examples/calibration_sweep.toml --out calibration_data.h5

Resumable: points already in the store (keyed by a hash of their inputs) are skipped.
"""
from __future__ import annotations

import argparse

from circuitsim.surrogate_data import CalibrationSweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="TOML file with a [calibration_sweep] table")
    parser.add_argument("--out", required=True, help="results store (.h5) to create or complete")
    args = parser.parse_args()
    done = run_sweep(CalibrationSweep.load(args.config), args.out)
    print(f"{done} new points written to {args.out}")


if __name__ == "__main__":
    main()
