"""The `circuitsim` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _cmd_simulate(args) -> int:
    from circuitsim.config import load_design
    from circuitsim.engines import simulate

    xb, drive = load_design(args.design)
    res = simulate(xb, engine=args.engine, **drive)
    currents = np.atleast_2d(res.column_currents)
    print(f"# column currents [A], {xb.shape[0]}x{xb.shape[1]} {xb.cell_type}, engine {args.engine}")
    for k, row in enumerate(currents):
        print(f"vector {k}: " + " ".join(f"{c:.6e}" for c in row))
    if args.out:
        out = Path(args.out)
        if out.suffix == ".npy":
            np.save(out, currents)
        else:
            np.savetxt(out, currents, delimiter=",", header="column currents [A], one input vector per line")
        print(f"wrote {out}")
    return 0


def design_netlist(design: str | Path) -> str:
    """The SPICE deck `circuitsim simulate` runs for a TOML design's first input vector."""
    from circuitsim.config import load_design
    from circuitsim.engines import netlist

    xb, drive = load_design(design)
    v_rows = np.atleast_2d(drive.pop("v_rows"))[0]
    return netlist(xb, v_rows, **{k: (np.atleast_2d(v)[0]) for k, v in drive.items()})


def _cmd_netlist(args) -> int:
    from circuitsim.netlist import relative_includes

    if args.out is None:
        print(design_netlist(args.design), end="")
        return 0
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    deck = relative_includes(design_netlist(args.design), out.parent)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(deck)
    partial.replace(out)  # a reader never sees half a deck
    print(f"wrote {out} (run it with: ngspice {out})")
    return 0


def _cmd_doctor(args) -> int:
    from circuitsim.doctor import report

    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1


def _cmd_demo(args) -> int:
    from circuitsim.demo import run_demo

    run_demo(args.out)
    return 0


def _cmd_sweep(args) -> int:
    from circuitsim.sweep import run_sweep

    try:
        run_sweep(args.config, args.out, workers=args.workers, scheduler=args.scheduler,
                  retry_failed=args.retry_failed, worker_wait_s=args.worker_wait)
    except KeyboardInterrupt:
        print(f"interrupted: the finished points are in {args.out}; run the same command to go on", file=sys.stderr)
        return 130
    return 0


def _cmd_calibrate(args) -> int:
    from circuitsim import plots
    from circuitsim.surrogate.calibration import calibrate_file

    cal = calibrate_file(args.data, args.out, holdout_fraction=args.holdout, seed=args.seed)
    plots.save(plots.calibration_parity(cal), args.plot or Path(args.out).with_suffix(".png"))
    print(f"# surrogate calibration from {args.data} -> {args.out}; errors as % of full scale")
    print(f"{'form':<10}{'held-out max':>14}{'held-out p99':>14}{'train rms':>12}{'s/vector':>12}  fitted")
    for form, fit in cal.forms.items():
        print(f"{form:<10}{100 * fit.heldout_max:>13.3f}%{100 * fit.heldout_p99:>13.3f}%{100 * fit.train_rms:>11.3f}%"
              f"{fit.seconds_per_vector:>12.2e}  " + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    print(f"uses form {cal.form!r}; parity plot {args.plot or Path(args.out).with_suffix('.png')}")
    return 0


def _cmd_characterize(args) -> int:
    from circuitsim.characterize.protocols import characterize_to_store, parse_assignments

    out = Path(args.out)
    plot = Path(args.plot) if args.plot else out.with_name(f"{out.stem}-{args.protocol}.png")
    key, result = characterize_to_store(args.protocol, args.model, parse_assignments(args.param, "--param"),
                                        parse_assignments(args.setting, "--setting"), out, engine=args.engine,
                                        plot_path=plot)
    if result is None:
        print(f"{out} already holds this dataset (point {key[:12]}); nothing to run")
        return 0
    for name, value in result.figures.items():
        for sub, number in (value.items() if isinstance(value, dict) else [("", value)]):
            if np.ndim(number) == 0:
                print(f"{name}{'.' if sub else ''}{sub} = {number:.6g}")
    print(f"wrote point {key[:12]} to {out} and the figure {plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from circuitsim.devices.memristors import MEMRISTORS

    parser = argparse.ArgumentParser(prog="circuitsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("simulate", help="solve a crossbar design given in a TOML file")
    p.add_argument("design", help="TOML design file (see examples/design.toml)")
    p.add_argument("--engine", choices=("spice", "numpy"), default="spice")
    p.add_argument("--out", help="write the column currents to this .csv or .npy file")
    p.set_defaults(func=_cmd_simulate)
    p = sub.add_parser("netlist", help="print the SPICE deck of a design (first input vector)")
    p.add_argument("design")
    p.add_argument("--out", help="write the deck to this file instead, its .include paths relative to it")
    p.set_defaults(func=_cmd_netlist)
    p = sub.add_parser("doctor", help="check ngspice, PySpice and the Python packages")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("demo", help="a short tour (SPICE run, IR drop, read margin, NN inference) "
                                    "writing figures and an HDF5 file")
    p.add_argument("--out", default="demo-output", help="output folder (default: ./demo-output)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("sweep", help="run a parameter sweep (TOML, see examples/sweep.toml) into an HDF5 store; "
                                     "rerunning computes only the missing points")
    p.add_argument("config")
    p.add_argument("--out", required=True, help="HDF5 results file (created or extended)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per CPU; at most two per CPU)")
    p.add_argument("--scheduler", help="Dask scheduler address: run the points on that cluster instead")
    p.add_argument("--worker-wait", type=float, default=60.0, metavar="SECONDS",
                   help="with --scheduler: stop when the cluster has had no worker this long (default 60)")
    p.add_argument("--retry-failed", action="store_true", help="compute the points that failed before again")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("calibrate", help="fit the surrogate to the SPICE points of an HDF5 store (README: Surrogate)")
    p.add_argument("data", help="results store with SPICE calibration points (README: Surrogate)")
    p.add_argument("--out", required=True, help="calibration file to write (.h5)")
    p.add_argument("--plot", help="held-out parity plot (.png; default: next to --out)")
    p.add_argument("--holdout", type=float, default=0.25, help="fraction of designs held out (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    p.set_defaults(func=_cmd_calibrate)
    p = sub.add_parser("characterize", help="run a device characterization protocol in ngspice into an HDF5 store "
                                            "(loop, pulse, ptdp, variability, read, temperature, retention, "
                                            "endurance)")
    p.add_argument("protocol")
    p.add_argument("--model", required=True, help=", ".join(MEMRISTORS))
    p.add_argument("--param", action="append", metavar="K=V", help="model parameter (repeatable)")
    p.add_argument("--setting", action="append", metavar="K=V[,V...]",
                   help="protocol setting, see circuitsim.characterize.Settings (repeatable)")
    p.add_argument("--engine", choices=("spice", "numpy"), default="spice")
    p.add_argument("--out", required=True, help="HDF5 results file (created or extended)")
    p.add_argument("--plot", help="figure file (default: <out stem>-<protocol>.png next to --out)")
    p.set_defaults(func=_cmd_characterize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"circuitsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
