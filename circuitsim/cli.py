"""The `circuitsim` command line.

Every command checks its inputs and outputs before computing (check_input, check_output),
writes its files atomically (nothing half-written is left), and reports a problem in one line
on stderr: exit code 2 for a usage error (bad input, an output it cannot write), 1 for a
failure while running, 130 when interrupted. `--debug` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np

from circuitsim.errors import CircuitsimError, StoreError
from circuitsim.files import write_atomically

SENTENCE_END = re.compile(r"\.\s")


def check_input(path: str | Path, what: str) -> Path:
    """An input file that exists and can be read, or a ValueError saying why not."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not {what}")
    if not path.exists():
        raise ValueError(f"{path}: no such file ({what})")
    if not path.is_file():  # reading a pipe would wait for a writer
        raise ValueError(f"{path} is not a regular file, not {what}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    return path


def _check_writable_folder(folder: Path, flag: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".circuitsim-write-check-")
    except OSError as exc:
        raise ValueError(f"{flag}: cannot write in folder {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | Path, flag: str = "--out", *, folder: bool = False, store: bool = False) -> Path:
    """Refuse, before any work, an output the command could not write: a folder where a file
    belongs (or a file where a folder does), a device or pipe, a missing or read-only folder,
    and for a results store (store=True) a file another process is writing or that is not a
    circuitsim store."""
    out = Path(path)
    if folder:
        if out.exists() and not out.is_dir():
            raise ValueError(f"{flag} {out} exists and is not a folder")
        existing = next(p for p in (out, *out.parents) if p.exists())  # the demo creates the rest
        if not existing.is_dir():
            raise ValueError(f"{flag} {out}: {existing} is not a folder")
        _check_writable_folder(existing, flag)
        return out
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; give a file name")
    if out.exists() and not out.is_file():
        raise ValueError(f"{flag} {out} is not a regular file (a device or a pipe?); give a file name")
    if not out.parent.is_dir():
        raise ValueError(f"{flag} {out}: folder {out.parent} does not exist")
    _check_writable_folder(out.parent, flag)
    if store and out.exists():
        from circuitsim.store import Store

        Store.open(out, "a").close()  # a locked, foreign, old or damaged store is refused now
    return out


def _cmd_simulate(args) -> int:
    from circuitsim.config import load_design
    from circuitsim.engines import simulate

    out = check_output(args.out) if args.out else None
    xb, drive = load_design(check_input(args.design, "a design file"))
    res = simulate(xb, engine=args.engine, **drive)
    currents = np.atleast_2d(res.column_currents)
    print(f"# column currents [A], {xb.shape[0]}x{xb.shape[1]} {xb.cell_type}, engine {args.engine}")
    for k, row in enumerate(currents):
        print(f"vector {k}: " + " ".join(f"{c:.6e}" for c in row))
    if out:
        if out.suffix == ".npy":
            write_atomically(out, lambda fh: np.save(fh, currents))
        else:
            write_atomically(out, lambda fh: np.savetxt(fh, currents, delimiter=",",
                                                        header="column currents [A], one input vector per line"))
        print(f"wrote {out}")
    return 0


def design_netlist(design: str | Path, self_contained: bool = False) -> str:
    """The SPICE deck `circuitsim simulate` runs for a TOML design's first input vector
    (self_contained: models inlined, column currents printed; see netlist())."""
    from circuitsim.config import load_design
    from circuitsim.engines import netlist
    from circuitsim.validate import voltages

    xb, drive = load_design(check_input(design, "a design file"))
    rows, cols = xb.shape
    lengths = {"v_rows": rows, "v_cols": cols, "v_gates": rows}
    first = {k: voltages(k, v, lengths[k])[0][0] for k, v in drive.items()}  # checked as simulate checks them
    return netlist(xb, **first, self_contained=self_contained)


def _cmd_netlist(args) -> int:
    from circuitsim.netlist import relative_includes

    if args.out is None:
        print(design_netlist(args.design, args.self_contained), end="")
        return 0
    out = check_output(args.out)
    deck = relative_includes(design_netlist(args.design, args.self_contained), out.parent)
    write_atomically(out, lambda fh: fh.write(deck.encode()))
    print(f"wrote {out} (run it with: ngspice {out})")
    return 0


def _cmd_doctor(args) -> int:
    from circuitsim.doctor import report

    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1


def _cmd_demo(args) -> int:
    from circuitsim.demo import run_demo

    run_demo(check_output(args.out, folder=True))
    return 0


def _cmd_demo_programming(args) -> int:
    from circuitsim.demo import run_programming_demo

    run_programming_demo(check_output(args.out, folder=True))
    return 0


def _cmd_sweep(args) -> int:
    from circuitsim.sweep import run_sweep

    check_input(args.config, "a sweep file")
    check_output(args.out, store=True)
    try:
        run_sweep(args.config, args.out, workers=args.workers, scheduler=args.scheduler,
                  retry_failed=args.retry_failed, worker_wait_s=args.worker_wait)
    except KeyboardInterrupt:
        print(f"interrupted: the finished points are in {args.out}; run the same command to go on", file=sys.stderr)
        return 130
    return 0


def _cmd_calibrate(args) -> int:
    from tqdm import tqdm

    from circuitsim import plots
    from circuitsim.surrogate.calibration import calibrate_file, checked_by_size, heldout_by_size

    check_input(args.data, "a results store")
    check_output(args.out)
    plot = check_output(args.plot or Path(args.out).with_suffix(".png"), "--plot")
    with tqdm(desc="calibrate (time left: an upper bound)", unit="cell", unit_scale=True, file=sys.stderr) as bar:
        cal = calibrate_file(args.data, args.out, holdout_fraction=args.holdout, seed=args.seed, progress=bar,
                             fit_max_cells=args.fit_max_cells or None, forms=args.forms)
    plots.save(plots.calibration_parity(cal), plot)
    print(f"# surrogate calibration from {args.data} -> {args.out}; errors as % of full scale")
    print(f"{'form':<10}{'held-out max':>14}{'held-out p99':>14}{'train rms':>12}{'s/vector':>12}  fitted")
    for form, fit in cal.forms.items():
        print(f"{form:<10}{100 * fit.heldout_max:>13.3f}%{100 * fit.heldout_p99:>13.3f}%{100 * fit.train_rms:>11.3f}%"
              f"{fit.seconds_per_vector:>12.2e}  " + ", ".join(f"{k}={v:.4g}" for k, v in fit.params.items()))
    print(f"# held-out error of form {cal.form!r} per array size (largest / mean per-design max error)")
    for rows, cols, n, worst, mean in heldout_by_size(cal):
        print(f"{rows:>5}x{cols:<5}{n:>4} designs{100 * worst:>10.3f}%{100 * mean:>10.3f}%")
    print("# held-out error of what simulate() returns (checked, corrected) per array size (largest; not vouched for)")
    for rows, cols, n, worst, refused in checked_by_size(cal):
        print(f"{rows:>5}x{cols:<5}{n:>4} designs{100 * worst:>10.3f}%{refused:>6} to numpy")
    print(f"uses form {cal.form!r}; parity plot {plot}")
    return 0


def _cmd_characterize(args) -> int:
    from circuitsim.characterize.protocols import characterize_to_store, parse_assignments

    out = check_output(args.out, store=True)
    plot = check_output(args.plot if args.plot else out.with_name(f"{out.stem}-{args.protocol}-{{key}}.png"), "--plot")
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
    print(f"wrote point {key[:12]} to {out} and the figure {str(plot).replace('{key}', key[:8])}")
    return 0


def _cmd_fit(args) -> int:
    from circuitsim.characterize.fit import fit_files, spread
    from circuitsim.characterize.protocols import parse_assignments

    data = [check_input(path, "a CSV file of measurements") for path in args.data]
    out = check_output(args.out, store=True)
    plot = check_output(args.plot if args.plot else out.with_suffix(".png"), "--plot")
    fits, key = fit_files(data, args.model, out, temperatures_k=args.temperature_k,
                          start=parse_assignments(args.param, "--param"), per_device=args.devices,
                          names=args.fit.split(",") if args.fit else None,
                          lib_name=args.name, plot_path=plot, max_evaluations=args.max_evaluations)
    for k, result in enumerate(fits):
        print(f"# {args.model} fitted to {', '.join(args.data) if len(fits) == 1 else args.data[k]} "
              f"({result.provenance['status']}; {result.provenance['evaluations']} evaluations)")
        for name, value in result.values.items():
            print(f"{name} = {value:.6g} ± {result.sigma[name]:.2g}")
        rms = ", ".join(f"{f['rms_ln_i']:.3g}" for f in result.figures)
        check = ", ".join(f"{r:.2g}" for r in result.spice_check["rms_ln_i_spice_vs_twin"])
        print(f"# rms of ln|I| residuals per file: {rms}; ngspice vs twin: {check}")
        if not result.provenance["converged"]:
            print(f"# NOT converged within {args.max_evaluations} evaluations: the values are not a minimum and "
                  "have no uncertainty (nan); raise --max-evaluations")
        if result.provenance["at_bounds"]:
            print(f"# at the search bounds (not determined by the data): {', '.join(result.provenance['at_bounds'])}")
    if len(fits) > 1:
        _, sigma = spread(fits)
        print("# device-to-device spread (sigma of ln p, for circuitsim.variability.device_to_device): "
              + ", ".join(f"{k}={v:.3g}" for k, v in sigma.items()))
    print(f"wrote {out} (point {key[:12]}), {out.with_suffix('.lib')} and the figure {plot}")
    return 0


def _characterize_epilog() -> str:
    """The protocols (first sentence of each one's docstring) and the settings with their shared defaults."""
    from circuitsim.characterize.protocols import PROTOCOLS
    from circuitsim.characterize.settings import settings_help

    lines = ["protocols:"]
    first_sentences = {name: " ".join(SENTENCE_END.split(func.__doc__)[0].split()) for name, func in PROTOCOLS.items()}
    lines += [textwrap.fill(text, 100, initial_indent=f"  {name:<12}", subsequent_indent=" " * 14)
              for name, text in first_sentences.items()]
    lines += ["", "settings (--setting NAME=VALUE or NAME=V1,V2,...; SI units; each model has its own defaults,",
              "derived from its parameters where docs/characterization.md says so; shown: the shared defaults):"]
    lines += [f"  {name} = {default}\n      {meaning}" for name, default, meaning in settings_help()]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from circuitsim.devices.memristors import MEMRISTORS

    parser = argparse.ArgumentParser(prog="circuitsim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])
    p = sub.add_parser("simulate", help="solve a crossbar design given in a TOML file")
    p.add_argument("design", help="TOML design file (see examples/design.toml)")
    p.add_argument("--engine", choices=("spice", "numpy"), default="spice")
    p.add_argument("--out", help="write the column currents to this .csv or .npy file")
    p.set_defaults(func=_cmd_simulate)
    p = sub.add_parser("netlist", help="print the SPICE deck of a design (first input vector)")
    p.add_argument("design")
    p.add_argument("--out", help="write the deck to this file instead, its .include paths relative to it")
    p.add_argument("--self-contained", action="store_true",
                   help="inline the models (no .include) and print the column currents when run by ngspice -b")
    p.set_defaults(func=_cmd_netlist)
    p = sub.add_parser("doctor", help="check ngspice, PySpice and the Python packages")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("demo", help="a short tour (SPICE run, IR drop, read margin, NN inference) "
                                    "writing figures and an HDF5 file")
    p.add_argument("--out", default="demo-output", help="output folder (default: ./demo-output)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("demo-programming", help="program every tile of the digits MLP by write-verify (1T1R "
                                                "Stanford-PKU), then its accuracy from 1 s to 10 years, bit-sliced "
                                                "weights and stuck-at faults (minutes)")
    p.add_argument("--out", default="demo-programming", help="output folder (default: ./demo-programming)")
    p.set_defaults(func=_cmd_demo_programming)
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
    p = sub.add_parser("calibrate", help="fit the surrogate to the SPICE points of an HDF5 store")
    p.add_argument("data", help="results store with SPICE calibration points (docs/guide/surrogate.md)")
    p.add_argument("--out", required=True, help="calibration file to write (.h5)")
    p.add_argument("--plot", help="held-out parity plot (.png; default: next to --out)")
    p.add_argument("--holdout", type=float, default=0.25, help="fraction of designs held out (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    p.add_argument("--forms", type=lambda text: tuple(text.split(",")), default=None,
                   help="comma-separated surrogate forms to fit (default: all; see docs/guide/surrogate.md)")
    p.add_argument("--fit-max-cells", type=int, default=64 * 64,
                   help="designs with more cells are all held out (they measure the extrapolation; fitting on "
                        "them costs most of the time); 0: fit on every size (default 4096, 64x64)")
    p.set_defaults(func=_cmd_calibrate)
    p = sub.add_parser("characterize", help="run a device characterization protocol in ngspice into an HDF5 store "
                                            "(loop, pulse, ptdp, variability, read, temperature, retention, "
                                            "endurance, mlc)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_characterize_epilog())
    p.add_argument("protocol", help="one of the protocols below")
    p.add_argument("--model", required=True, help=", ".join(MEMRISTORS))
    p.add_argument("--param", action="append", metavar="K=V", help="model parameter (repeatable)")
    p.add_argument("--setting", action="append", metavar="K=V[,V...]",
                   help="protocol setting, see circuitsim.characterize.Settings (repeatable)")
    p.add_argument("--engine", choices=("spice", "numpy"), default="spice")
    p.add_argument("--out", required=True, help="HDF5 results file (created or extended)")
    p.add_argument("--plot", help="figure file (default: <out stem>-<protocol>-<dataset key>.png next to --out)")
    p.set_defaults(func=_cmd_characterize)
    p = sub.add_parser("fit", help="fit a compact model to measured CSV waveforms (columns time_s, voltage_v, "
                                   "current_a); writes FIT.h5, FIT.lib and FIT.png")
    p.add_argument("data", nargs="+", help="CSV files, one I-V loop or pulse train each")
    p.add_argument("--model", required=True, help=", ".join(MEMRISTORS))
    p.add_argument("--out", required=True, help="HDF5 file for the fitted values, uncertainties and residuals")
    p.add_argument("--temperature-k", type=float, nargs="+", help="stage temperature [K]: one for all files "
                                                                  "or one per file (default 300)")
    p.add_argument("--param", action="append", metavar="K=V", help="start value of a model parameter (repeatable)")
    p.add_argument("--fit", metavar="P1,P2,...", help="parameters to fit (default: the model's levels, rates "
                                                       "and thresholds, circuitsim.characterize.fit.FIT_PARAMS)")
    p.add_argument("--devices", action="store_true", help="each file is another device: fit each and report "
                                                          "the device-to-device spread")
    p.add_argument("--name", help="subckt name in the written .lib (default <model>_fit)")
    p.add_argument("--plot", help="overlay figure (.png; default: next to --out)")
    p.add_argument("--max-evaluations", type=int, default=200, help="least-squares evaluations (default 200)")
    p.set_defaults(func=_cmd_fit)
    return parser


USAGE_ERRORS = (ValueError, TypeError, FileNotFoundError, StoreError)  # exit code 2
FAILURES = (CircuitsimError, RuntimeError, OSError, MemoryError)  # exit code 1


def one_line(exc: BaseException) -> str:
    """An exception as one line of text."""
    if isinstance(exc, MemoryError):
        return "out of memory: the design or the batch is too large for this machine"
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, CircuitsimError):
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:  # a warning is one line too
        warnings.formatwarning = lambda message, category, *_: f"circuitsim: {category.__name__}: {message}\n"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"circuitsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except USAGE_ERRORS + FAILURES as exc:
        if args.debug:
            raise
        print(f"circuitsim {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, USAGE_ERRORS) else 1


if __name__ == "__main__":
    sys.exit(main())
