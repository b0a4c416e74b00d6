"""Surrogate vs SPICE vs the exact numpy solver, side by side in one run, ratios and peak RSS printed.

1S1R (default sinh selector) n×n arrays (--size 64 256): per-vector time of engine="spice"
(one deck, `alter` per vector), engine="numpy" (batched exact Newton, --numpy-vectors) and
engine="surrogate" end to end (simulate(): range check, the calibrated form, its a-posteriori
check and any Newton corrections; best of --repeat calls) on a batch of 100 and on --batch
vectors, first call (prepares the design) and second call (the prepared design reused); then
every form alone (no check), each with its error against SPICE on the SPICE vectors and its
held-out errors from the calibration (fractions of full scale). Peak RSS: the largest resident
memory of this process and its children (the SPICE worker) while the row ran, sampled every
2 ms (for the surrogate, in one more call apart from the timed ones: the poller would slow calls
of milliseconds). A summary table (size, batch, per-vector times, ratios, peak RSS) closes the run.
1R: the exact transfer-matrix path I = V·T against a plain matmul V·G of the same shape.
--estimate: the a-posteriori check against the true error (vs the exact numpy engine) on the
designs of issue 12 (64×64, 5 Ω, 8 Ω driver/sense, 90–100 µS, four selectors) and on random
designs up to 256×256.
--error-map: every form's largest error against SPICE over a grid of array sizes × wire
resistances (fresh random designs and inputs), as tables, and the calibrated form's as a PNG.

    .venv/bin/python benchmarks/bench_surrogate.py [--size 64 256] [--r-wire 2] [--batch 10000]
        [--spice-vectors 4] [--numpy-vectors 100] [--repeat 3] [--calibration data/default_calibration.h5]
        [--estimate] [--error-map error_map.png]
"""
from __future__ import annotations

import argparse
import threading
import warnings

import numpy as np
import psutil
from bench_core import best_of  # benchmarks/ is on sys.path when this file runs as a script

import circuitsim
from circuitsim.devices import SinhSelector
from circuitsim.spice.worker import SpiceWorker
from circuitsim.surrogate import forms as models
from circuitsim.surrogate import model as sur


def inputs(rng, batch: int, rows: int, v_max: float) -> np.ndarray:
    return rng.uniform(0, v_max, (batch, rows)) * (rng.random((batch, rows)) < 0.7)


class PeakRss:
    """Largest RSS [MB] of this process and its children while the block ran (polled every 2 ms)."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        me = psutil.Process()
        while not self._stop.is_set():
            rss = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss / 2 ** 20)
            self._stop.wait(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(fn, repeat: int = 1) -> tuple[float, float]:
    """(best wall time [s] of `repeat` runs, peak RSS [MB] while they ran)."""
    with PeakRss() as rss:
        t = best_of(fn, repeat)[0]   # wall time
    return t, rss.peak


def timed_apart(fn, repeat: int) -> tuple[float, float]:
    """(best wall time [s] of `repeat` runs without the RSS poller, peak RSS [MB] of one more run
    with it): for calls of milliseconds, which a 2 ms poller holding the GIL would slow."""
    t = best_of(fn, repeat)[0]   # wall time
    with PeakRss() as rss:
        fn()
    return t, rss.peak


def bench_1s1r(args, n: int, cal: sur.Calibration) -> list[tuple]:
    """The table of one n×n array; returns its summary rows (size, batch, call, s per vector of
    SPICE / numpy / surrogate, peak RSS [MB] of the surrogate call)."""
    rng = np.random.default_rng(args.seed)
    v_max = cal.domain.v_rows_v[1]
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=args.r_wire, r_col=args.r_wire,
                             selector=SinhSelector())
    v_spice = inputs(rng, args.spice_vectors, n, v_max)
    v_batch = inputs(rng, args.batch, n, v_max)
    with SpiceWorker() as worker:
        circuitsim.simulate(xb, v_spice[:1], engine="spice", worker=worker)           # warm the worker
        t_spice, m_spice = timed(lambda: circuitsim.simulate(xb, v_spice, engine="spice", worker=worker))
        truth = circuitsim.simulate(xb, v_spice, engine="spice", worker=worker).column_currents
    t_spice /= len(v_spice)
    full_scale = np.abs(truth).max()
    v_numpy = v_batch[:args.numpy_vectors]
    # warmed like the worker and the surrogate: its compiled code loaded and the circuit built
    circuitsim.simulate(xb, v_numpy[:1], engine="numpy")
    t_numpy, m_numpy = timed(lambda: circuitsim.simulate(xb, v_numpy, engine="numpy"), args.repeat)
    t_numpy /= len(v_numpy)
    numpy_err = np.abs(circuitsim.simulate(xb, v_spice, engine="numpy").column_currents - truth).max() / full_scale
    print(f"# {n}x{n} 1S1R, sinh selector i0={xb.selector.i0:g} A v0={xb.selector.v0:g} V, "
          f"r_row = r_col = {args.r_wire} Ω, inputs in [0, {v_max:.2f}] V (30% zeros)")
    print(f"{'engine / form':<34}{'s per vector':>14}{'x SPICE':>12}{'x numpy':>10}{'peak RSS':>10}{'max err/FS':>12}"
          f"{'held-out max':>14}{'mean':>12}")
    print(f"{'spice':<34}{t_spice:>14.3e}{1:>12.0f}{t_numpy / t_spice:>10.3f}{m_spice:>8.0f}MB{0:>12.1e}")
    print(f"{'numpy (exact), batch ' + str(len(v_numpy)):<34}{t_numpy:>14.3e}{t_spice / t_numpy:>12.0f}{1:>10.0f}"
          f"{m_numpy:>8.0f}MB{numpy_err:>12.1e}")
    summary = []
    for batch in dict.fromkeys((100, len(v_batch))):
        v = v_batch[:batch]
        for call in ("1st call", "2nd call"):
            def run(v=v, fresh=call == "1st call"):
                if fresh:    # the 1st call prepares the design: drop what an earlier call left
                    sur._PREPARED.items.clear()
                return circuitsim.simulate(xb, v, engine="surrogate", calibration=cal)

            t_end, m_end = timed_apart(run, args.repeat)
            res = run()
            checked = circuitsim.simulate(xb, v_spice, engine="surrogate", calibration=cal)
            err = np.abs(checked.column_currents - truth).max() / full_scale
            print(f"{'simulate(surrogate) ' + call + ', batch ' + str(batch):<34}{t_end / batch:>14.3e}"
                  f"{t_spice * batch / t_end:>12.0f}{t_numpy * batch / t_end:>10.0f}{m_end:>8.0f}MB{err:>12.1e}"
                  f"  estimate {100 * res.provenance['error_estimate']:.3f}% ({res.engine}), form {cal.form}")
            summary.append((n, batch, call, t_spice, t_numpy, t_end / batch, m_end, res.engine))
    for form in cal.forms:
        prep = sur.prepare(xb, cal, form)
        batch = v_batch if form != "relax" else v_batch[:max(1, len(v_batch) // 20)]
        t_form, m_form = timed(lambda prep=prep, batch=batch: models.column_currents(prep, batch), 3)
        t_form /= len(batch)
        err = np.abs(models.column_currents(prep, v_spice) - truth).max() / full_scale
        fit = cal.forms[form]
        print(f"{form + ' alone (batch ' + str(len(batch)) + ')':<34}{t_form:>14.3e}{t_spice / t_form:>12.0f}"
              f"{t_numpy / t_form:>10.0f}{m_form:>8.0f}MB{err:>12.1e}{100 * fit.heldout_max:>13.3f}%"
              f"{100 * fit.heldout_mean:>11.4f}%")
    return summary


def print_summary(rows: list[tuple]) -> None:
    """One line per size, batch and call: the figures the goals of issue 13 name."""
    print("\n# summary: s per vector, simulate(engine=...) end to end; surrogate = checked answer")
    print(f"{'size':>9}{'batch':>7}{'call':>10}{'SPICE':>11}{'numpy':>11}{'surrogate':>11}{'x SPICE':>10}"
          f"{'x numpy':>9}{'peak RSS':>10}  answered by")
    for n, batch, call, t_spice, t_numpy, t_sur, rss, engine in rows:
        print(f"{f'{n}x{n}':>9}{batch:>7}{call:>10}{t_spice:>11.3e}{t_numpy:>11.3e}{t_sur:>11.3e}"
              f"{t_spice / t_sur:>10.0f}{t_numpy / t_sur:>9.0f}{rss:>8.0f}MB  {engine}")


def bench_linear(args) -> None:
    rng = np.random.default_rng(args.seed + 1)
    n = args.size[0]
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=args.r_wire, r_col=args.r_wire)
    transfer = sur.linear_transfer(xb)
    print(f"\n# {n}x{n} 1R, exact transfer matrix I = V·T (v_cols = 0) vs a plain matmul V·G")
    print(f"{'batch':>8}{'V·T [s]':>12}{'V·G [s]':>12}{'ratio':>8}{'max err/FS vs numpy':>22}")
    for batch in dict.fromkeys((1000, args.batch)):
        v = rng.uniform(-1, 1, (batch, n))
        t_t = best_of(lambda v=v: v @ transfer, 5)[0]
        t_g = best_of(lambda v=v: v @ xb.conductance, 5)[0]
        exact = circuitsim.simulate(xb, v[:200], engine="numpy").column_currents
        err = np.abs(v[:200] @ transfer - exact).max() / np.abs(exact).max()
        print(f"{batch:>8}{t_t:>12.3e}{t_g:>12.3e}{t_t / t_g:>8.2f}{err:>22.1e}")


def estimate_table(args, cal: sur.Calibration) -> None:
    """The check against the truth (the exact numpy engine), fractions of full scale, max over the batch:
    the form's own error and its converged first-order estimate, then what simulate() returns (after
    any Newton corrections) with the bound that vouched for it."""
    rng = np.random.default_rng(args.seed + 3)
    v_max = cal.domain.v_rows_v[1]
    cases = [(f"64x64, 5 Ω, 8 Ω drv/sense, 90-100 µS, i0={i0:g} v0={v0:g}",
              circuitsim.Crossbar(conductance=rng.uniform(9e-5, 1e-4, (64, 64)), r_row=5.0, r_col=5.0, r_driver=8.0,
                                  r_sense=8.0, selector=SinhSelector(i0=i0, v0=v0)))
             for i0, v0 in ((1e-8, 0.1), (1e-6, 0.1), (1e-5, 0.05), (1e-7, 0.07))]
    cases += [(f"{n}x{n}, {r:g} Ω, 1-100 µS", circuitsim.Crossbar(
        conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=r, r_col=r, selector=SinhSelector()))
        for n, r in ((16, 1.0), (32, 2.0), (64, 2.0), (64, 5.0), (128, 2.0), (128, 5.0), (256, 2.0))]
    print(f"\n# the check vs the true error (exact numpy engine), form {cal.form}, batch: all-on {v_max:.2f} V + "
          f"{args.estimate_vectors - 1} random vectors")
    print(f"{'design':<52}{'form':>9}{'estimate':>10}{'answer':>9}{'bound':>9}{'Newton':>8}{'CG':>4}  answered by")
    for name, xb in cases:
        n = xb.shape[0]
        v = np.vstack([np.full(n, v_max), inputs(rng, args.estimate_vectors - 1, n, v_max)])
        exact = circuitsim.simulate(xb, v, engine="numpy").column_currents
        prep, equations, _ = sur._prepared(xb, cal)
        cells = models.cell_currents(prep, v, np.float32)
        form = np.abs(cells.sum(axis=1) - exact).max() / np.abs(exact).max()
        converged = sur.trust.estimate(equations, v, cells).relative
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sur.SurrogateAccuracyWarning)
            res = circuitsim.simulate(xb, v, engine="surrogate", calibration=cal)
        answer = np.abs(res.column_currents - exact).max() / np.abs(exact).max()
        p = res.provenance
        print(f"{name:<52}{100 * form:>8.3f}%{100 * converged:>9.3f}%{100 * answer:>8.4f}%"
              f"{100 * p['error_estimate']:>8.3f}%{p.get('newton_steps', '-'):>8}{p['cg_iterations']:>4}  {res.engine}")


def error_map(args, cal: sur.Calibration) -> None:
    """Max |I_surrogate − I_spice| / full scale on fresh designs, sizes × wire resistances.

    Each design gets an all-on vector and three random ones; the largest array's errors are
    also shown for the random vectors alone (the input statistics the forms were fitted on).
    """
    from matplotlib.figure import Figure

    rng = np.random.default_rng(args.seed + 2)
    sizes, r_wires = (8, 16, 32, 64), (0.5, 1.0, 2.0, 3.5, 5.0)
    grid = {form: np.zeros((len(sizes), len(r_wires))) for form in cal.forms}
    random_only = {form: np.zeros(len(r_wires)) for form in cal.forms}     # largest size
    with SpiceWorker() as worker:
        for a, n in enumerate(sizes):
            for b, r in enumerate(r_wires):
                xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (n, n)), r_row=r, r_col=r,
                                         selector=SinhSelector())
                v = np.vstack([np.full(n, cal.domain.v_rows_v[1]), inputs(rng, 3, n, cal.domain.v_rows_v[1])])
                truth = circuitsim.simulate(xb, v, engine="spice", worker=worker).column_currents
                for form, errors in grid.items():
                    got = models.column_currents(sur.prepare(xb, cal, form), v)
                    err = np.abs(got - truth).max(axis=1) / np.abs(truth).max()
                    errors[a, b], random_only[form][b] = err.max(), err[1:].max()
    print(f"\n# error map: max |I − I_spice| / full scale, fresh random {sizes} square arrays, 4 vectors each")
    for form, errors in grid.items():
        print(f"{form:>10} | " + " ".join(f"r={r:<4g}Ω" for r in r_wires))
        for n, row in zip(sizes, errors):
            print(f"{n:>7}x{n:<2}| " + " ".join(f"{100 * e:>6.3f}%" for e in row))
    n = sizes[-1]
    print(f"\n# {n}x{n}, the 3 random vectors only")
    print(f"{'form':>10} | " + " ".join(f"r={r:<4g}Ω" for r in r_wires))
    for form, errors in random_only.items():
        print(f"{form:>10} | " + " ".join(f"{100 * e:>6.3f}%" for e in errors))
    fig = Figure(figsize=(5.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(100 * grid[cal.form], cmap="viridis", origin="lower")
    for (a, b), e in np.ndenumerate(grid[cal.form]):
        ax.text(b, a, f"{100 * e:.2f}", ha="center", va="center", color="w", fontsize=8)
    ax.set_xticks(range(len(r_wires)), [f"{r:g}" for r in r_wires])
    ax.set_yticks(range(len(sizes)), [f"{n}x{n}" for n in sizes])
    ax.set_xlabel("wire resistance per segment [Ω]")
    ax.set_ylabel("array size")
    ax.set_title(f"surrogate ({cal.form}) vs SPICE: max error [% of full scale]")
    fig.colorbar(image, ax=ax, label="% of full scale")
    fig.savefig(args.error_map, dpi=110)
    print(f"wrote {args.error_map}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs="+", default=[64], help="array sizes n (n×n), one table each")
    parser.add_argument("--r-wire", type=float, default=2.0, help="wire segment resistance [Ω]")
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--spice-vectors", type=int, default=4)
    parser.add_argument("--numpy-vectors", type=int, default=100)
    parser.add_argument("--calibration", default=None, help="calibration .h5 (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="surrogate calls timed: best of this many")
    parser.add_argument("--estimate", action="store_true", help="also compare the error estimate with the true error")
    parser.add_argument("--estimate-vectors", type=int, default=20)
    parser.add_argument("--skip-speed", action="store_true", help="only the tables asked for (--estimate, --error-map)")
    parser.add_argument("--error-map", help="also measure the error map against SPICE and write this PNG")
    args = parser.parse_args()
    cal = sur.load(args.calibration) if args.calibration else sur.load_default()
    if not args.skip_speed:
        summary = [row for n in args.size for row in bench_1s1r(args, n, cal)]
        bench_linear(args)
        print_summary(summary)
    if args.estimate:
        estimate_table(args, cal)
    if args.error_map:
        error_map(args, cal)


if __name__ == "__main__":
    main()
