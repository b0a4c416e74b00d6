"""`circuitsim demo`: a short tour of what circuitsim does, in under 3 minutes on 2 cores.

1. a small 1S1R crossbar solved by ngspice, its netlist shown;
2. the numpy engine against ngspice on the same array;
3. the IR-drop map of a larger array;
4. the worst-case read margin against array size for three bias schemes;
5. a digits MLP on crossbar tiles: accuracy from float weights down to the exact circuit,
   the surrogate and a SPICE spot check, energy per MAC;
6. accuracy against wire resistance, ADC bits and tile size.
Figures (PNG), the full netlist and every number (HDF5) go to one output folder.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuitsim import analysis, nn, plots
from circuitsim.design import Crossbar
from circuitsim.devices import SinhSelector
from circuitsim.engines import netlist, simulate
from circuitsim.netlist import relative_includes
from circuitsim.spice.worker import SpiceWorker

# The NN hardware of the tour: nn.Hardware's defaults (2-60 µS cells on 16 levels, 32×32
# tiles, 6-bit DAC, 8-bit ADC) with 2 Ω wire segments, a sinh selector per cell and 10 % D2D spread.
NN_HARDWARE = nn.Hardware(r_wire=2.0, selector=SinhSelector(i0=1e-5, v0=0.05), sigma_d2d=0.1, seed=0)
TOUR_SELECTOR = SinhSelector(i0=1e-5, v0=0.05)  # the small SPICE crossbar of steps 1-2
READ_SELECTOR = SinhSelector(i0=1e-8, v0=0.05)  # the read-margin curve (read at 0.5 V)
R_WIRE_OHM = 2.0
ELEMENT_LINES_SHOWN = 3  # of each run of similar netlist lines


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the tour. nn_images: test images for every accuracy (None: the whole test set)."""

    spice_size: int = 8
    spice_vectors: int = 8
    ir_size: int = 64
    margin_sizes: tuple[int, ...] = (4, 8, 16, 32, 64)
    hidden: int = 32
    nn_images: int | None = None
    spice_images: int = 4
    r_wire_ohm: tuple[float, ...] = (0.0, 5.0, 20.0, 50.0, 100.0, 200.0)
    adc_bits: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
    tile_sizes: tuple[int, ...] = (8, 16, 32, 64)
    tile_sweep_r_wire_ohm: float = 20.0


# A fast variant of the same code path (tests): tiny arrays, few images, two points per sweep.
QUICK = DemoConfig(spice_size=4, spice_vectors=3, ir_size=8, margin_sizes=(4, 8), hidden=16, nn_images=12,
                   spice_images=2, r_wire_ohm=(0.0, 50.0), adc_bits=(3, 8), tile_sizes=(16, 32))


@dataclass
class DemoResult:
    """What the tour produced: figures {name: path}, the HDF5 file, and the headline numbers.
    accuracy: {row name: (accuracy, images)}."""

    out_dir: Path
    figures: dict[str, Path] = field(default_factory=dict)
    hdf5: Path | None = None
    spice_numpy_rel_diff: float = float("nan")
    accuracy: dict[str, tuple[float, int]] = field(default_factory=dict)
    spot_check: nn.SpotCheck | None = None
    energy: nn.EnergyReport | None = None
    data: dict = field(default_factory=dict)  # stored records: {key: {"inputs", "outputs", "provenance"}}


class _Progress:
    """Numbered steps with elapsed time, printed as they start."""

    def __init__(self, total: int, echo: Callable[[str], None]):
        self.total, self.echo, self.k, self.start = total, echo, 0, time.perf_counter()

    def step(self, title: str) -> None:
        self.k += 1
        self.echo(f"\n[{self.k}/{self.total}] {title}  (t = {time.perf_counter() - self.start:.1f} s)")


def _element_kind(line: str) -> str | None:
    """'Rrow', 'XS', 'Vin', ... for an element line; None for comments, dot-lines and blanks."""
    return None if line[:1] in "*." else re.match(r"[A-Za-z]+", line).group(0)


def netlist_excerpt(deck: str, per_run: int = ELEMENT_LINES_SHOWN) -> str:
    """The deck with comments and dot-lines kept and each run of similar elements cut to `per_run` lines."""
    out = []
    for kind, group in itertools.groupby(deck.splitlines(), key=_element_kind):
        lines = list(group)
        out += lines if kind is None or len(lines) <= per_run else [
            *lines[:per_run], f"... ({len(lines) - per_run} more {kind} lines)"]
    return "\n".join(out)


def _point(inputs: dict, outputs: dict, provenance: dict) -> dict:
    """One stored record of the tour."""
    return {"inputs": inputs, "outputs": outputs, "provenance": provenance}


def _hardware_tree(hw: nn.Hardware) -> dict:
    return {**vars(hw), "selector": None if hw.selector is None else vars(hw.selector)}


def _random_crossbar(size: int, selector, seed: int) -> Crossbar:
    g = np.random.default_rng(seed).uniform(5e-6, 100e-6, (size, size))
    return Crossbar(conductance=g, r_row=R_WIRE_OHM, r_col=R_WIRE_OHM, selector=selector)


def _spice_tour(cfg: DemoConfig, out: Path, worker: SpiceWorker, res: DemoResult, progress: _Progress) -> None:
    echo = progress.echo
    xb = _random_crossbar(cfg.spice_size, TOUR_SELECTOR, seed=0)
    v = np.random.default_rng(1).uniform(0.0, 0.3, (cfg.spice_vectors, cfg.spice_size))
    deck = netlist(xb, v[0])
    (out / "crossbar.cir").write_text(relative_includes(deck, out))  # runs with `ngspice crossbar.cir` too
    echo(f"netlist of a {cfg.spice_size}x{cfg.spice_size} 1S1R crossbar (cell conductance in series with "
         f"i0·sinh(V/v0)), {R_WIRE_OHM:g} Ω per wire segment; full deck in {out / 'crossbar.cir'}:")
    echo("\n".join("    " + line for line in netlist_excerpt(deck).splitlines()))
    spice = simulate(xb, v, engine="spice", worker=worker)
    echo(f"ngspice {spice.provenance['ngspice_version']}: {cfg.spice_vectors} input vectors in "
         f"{spice.provenance['wall_time_s']:.2f} s; column currents of vector 0 [µA]: "
         + " ".join(f"{1e6 * c:.2f}" for c in spice.column_currents[0]))
    progress.step("numpy engine vs ngspice on the same crossbar")
    exact = simulate(xb, v, engine="numpy")
    res.spice_numpy_rel_diff = float(np.abs(spice.column_currents - exact.column_currents).max()
                                     / np.abs(spice.column_currents).max())
    echo(f"numpy engine in {exact.provenance['wall_time_s']:.3f} s; largest column-current difference: "
         f"{res.spice_numpy_rel_diff:.1e} of the largest current")
    res.data["spice_run"] = _point(
        {"conductance_s": xb.conductance, "v_rows": v, "r_wire_ohm": R_WIRE_OHM, "selector": vars(TOUR_SELECTOR)},
        {"spice_column_currents_a": spice.column_currents, "numpy_column_currents_a": exact.column_currents},
        {"netlist": deck, "netlist_sha256": spice.provenance["netlist_sha256"],
         "ngspice_version": spice.provenance["ngspice_version"], "spice_wall_time_s": spice.provenance["wall_time_s"],
         "numpy_wall_time_s": exact.provenance["wall_time_s"], "seed": 0})


def _ir_drop(cfg: DemoConfig, out: Path, res: DemoResult, echo) -> None:
    xb = _random_crossbar(cfg.ir_size, None, seed=2)
    drop = analysis.ir_drop_map(xb, np.full(cfg.ir_size, 0.2))
    echo(f"{cfg.ir_size}x{cfg.ir_size} 1R array (5-100 µS), {R_WIRE_OHM:g} Ω segments, all rows at 0.2 V: "
         f"the worst cell loses {100 * drop.relative.max():.1f} % of its voltage to the wires")
    res.figures["ir_drop"] = plots.save(plots.ir_drop_map(
        drop, f"IR drop, {cfg.ir_size}×{cfg.ir_size} array, {R_WIRE_OHM:g} Ω segments"), out / "ir_drop.png")
    res.data["ir_drop"] = _point({"conductance_s": xb.conductance, "v_rows": np.full(cfg.ir_size, 0.2),
                                  "r_wire_ohm": R_WIRE_OHM},
                                 {"effective_v": drop.effective, "ideal_v": drop.ideal}, {"engine": "numpy", "seed": 2})


def _read_margin(cfg: DemoConfig, out: Path, res: DemoResult, echo) -> None:
    margins = {}
    for scheme in analysis.SCHEMES:
        found = [analysis.read_margin(Crossbar(conductance=np.full((n, n), 1e-6), r_row=R_WIRE_OHM, r_col=R_WIRE_OHM,
                                               selector=READ_SELECTOR), 1e-4, 1e-6, v_read=0.5, scheme=scheme)
                 for n in cfg.margin_sizes]
        margins[scheme] = np.array([m.margin for m in found])
        res.data[f"read_margin-{scheme.replace('/', '_')}"] = _point(
            {"size": np.array(cfg.margin_sizes), "scheme": scheme, "g_on_s": 1e-4, "g_off_s": 1e-6,
             "r_wire_ohm": R_WIRE_OHM, "v_read": 0.5, "selector": vars(READ_SELECTOR)},
            {"margin": margins[scheme], "i_on_a": np.array([m.i_on for m in found]),
             "i_off_a": np.array([m.i_off for m in found])}, {"engine": "numpy"})
        echo(f"{scheme:>8}: " + ", ".join(f"{n}x{n} {100 * m:.0f} %" for n, m in zip(cfg.margin_sizes,
                                                                                   margins[scheme])))
    res.figures["read_margin"] = plots.save(plots.read_margin_curve(
        cfg.margin_sizes, margins, f"Read margin, 1S1R, {R_WIRE_OHM:g} Ω segments, 0.5 V read"),
        out / "read_margin.png")


def _counted(backend: nn.Backend, bar) -> nn.Backend:
    """The backend, advancing a progress bar by one per tile read."""
    def run(xb, v):
        out = backend(xb, v)
        bar.update(1)
        return out
    return run


def _with_progress(name: str, mapped: nn.MappedNetwork, x: np.ndarray, backend: nn.Backend) -> nn.Inference:
    from tqdm import tqdm

    tiles = sum(len(layer.tiles) for layer in mapped.layers)
    with tqdm(total=tiles, desc=f"{name}, {len(x)} images", unit="tile", leave=False) as bar:
        return nn.infer(mapped, x, _counted(backend, bar))


def _surrogate_run(mapped: nn.MappedNetwork, x: np.ndarray, echo) -> nn.Inference | None:
    """The network on engine="surrogate" with the shipped calibration; None (said so) if it is missing.
    Reads outside the calibrated range are reported, not hidden."""
    from circuitsim.surrogate import model as surrogate

    try:
        calibration = surrogate.load_default()
    except FileNotFoundError as exc:
        echo(f"surrogate row pending: {exc}")
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", surrogate.CalibrationRangeWarning)
        run = _with_progress("surrogate", mapped, x, nn.engine_backend("surrogate", calibration=calibration))
    for message in sorted({str(w.message) for w in caught if w.category is surrogate.CalibrationRangeWarning}):
        echo(f"note, surrogate: {message}")
    return run


@dataclass(frozen=True, eq=False)
class _Task:
    """The trained network and the test images of the tour."""

    net: nn.Network
    digits: nn.Digits
    x: np.ndarray
    y: np.ndarray


def _nn_accuracy(cfg: DemoConfig, worker: SpiceWorker, res: DemoResult, echo) -> _Task:
    digits = nn.load_digits_split()
    net = nn.train_mlp(digits, hidden=cfg.hidden)
    n = len(digits.y_test) if cfg.nn_images is None else cfg.nn_images
    task = _Task(net, digits, digits.x_test[:n], digits.y_test[:n])
    hw = NN_HARDWARE
    exact = nn.map_network(net, hw, digits.x_train)
    echo(f"MLP 64-{cfg.hidden}-10 trained on {len(digits.y_train)} digits; "
         f"{sum(len(layer.tiles) for layer in exact.layers)} tiles of at most {hw.tile_rows}x{hw.tile_cols}, "
         f"{hw.levels} levels in {hw.g_min_s * 1e6:g}-{hw.g_max_s * 1e6:g} µS, DAC {hw.dac_bits} b, "
         f"ADC {hw.adc_bits} b; testing on {n} images")
    ideal = nn.map_network(net, hw.replace(r_wire=0.0, selector=None, sigma_d2d=0.0), digits.x_train)
    run = _with_progress("exact circuit", exact, task.x, nn.engine_backend("numpy"))
    surrogate = _surrogate_run(exact, task.x, echo)
    spice = nn.infer(exact, task.x[:cfg.spice_images], nn.engine_backend("spice", worker=worker))
    circuit = f"{hw.r_wire:g} Ω wires, sinh selector, σ={hw.sigma_d2d:g} D2D"
    for name, predictions, labels in [
            ("float weights", net.predict(task.x), task.y),
            ("ideal crossbar (quantized, no parasitics)", nn.infer(ideal, task.x).predictions, task.y),
            (f"exact circuit (numpy engine: {circuit})", run.predictions, task.y),
            *([("calibrated surrogate (same circuit)", surrogate.predictions, task.y)]
              if surrogate is not None else []),
            ("SPICE, whole network (ngspice, same circuit)", spice.predictions, task.y[:cfg.spice_images])]:
        res.accuracy[name] = (nn.accuracy(predictions, labels), len(labels))
    res.spot_check = spot = nn.spice_spot_check(exact, task.x[:cfg.spice_images], worker)
    same = int(np.sum(spice.predictions == run.predictions[:cfg.spice_images]))
    echo(f"SPICE spot check: tile {spot.tile_shape[0]}x{spot.tile_shape[1]} {spot.cell_type} on "
         f"{cfg.spice_images} images agrees with numpy to {spot.max_rel_diff:.1e} (max |Δ| / max |I|); "
         f"whole network in ngspice: {same}/{cfg.spice_images} predictions equal numpy's")
    if surrogate is not None:
        echo(f"surrogate and numpy engine predict the same digit for "
             f"{100 * np.mean(surrogate.predictions == run.predictions):.1f} % of the images")
    res.energy = e = nn.energy_per_mac(exact, run)
    hardware = _hardware_tree(hw)
    res.data["nn-accuracy"] = _point(
        {"hardware": hardware, "hidden": cfg.hidden, "images": n},
        {"name": list(res.accuracy), "accuracy": [a for a, _ in res.accuracy.values()],
         "images": [k for _, k in res.accuracy.values()]}, {"training_seed": 0})
    res.data["nn-spot_check"] = _point(
        {"hardware": hardware, "tile": "layer 0, tile 0", "images": cfg.spice_images},
        {"spice_column_currents_a": spot.spice_a, "numpy_column_currents_a": spot.numpy_a}, {"engine": "spice+numpy"})
    res.data["nn-energy"] = _point(
        {"hardware": hardware, "converter_model": vars(nn.ConverterEnergy())},
        {"array_fj_per_mac": e.array_fj, "adc_fj_per_mac": e.adc_fj, "dac_fj_per_mac": e.dac_fj,
         "total_fj_per_mac": e.total_fj, "digital_reference_name": list(e.digital),
         "digital_reference_fj_per_mac": list(e.digital.values())}, {"engine": "numpy"})
    return task


def _nn_sweeps(cfg: DemoConfig, task: _Task, out: Path, res: DemoResult) -> None:
    from tqdm import tqdm

    base = NN_HARDWARE.replace(selector=None)  # 1R cells: the numpy engine solves a whole batch at once
    sweeps = [("r_wire", "wire segment resistance [Ω]", cfg.r_wire_ohm,
               [base.replace(r_wire=r) for r in cfg.r_wire_ohm]),
              ("adc_bits", "ADC bits", cfg.adc_bits, [base.replace(adc_bits=b) for b in cfg.adc_bits]),
              ("tile_size", f"tile size n (n×n, {cfg.tile_sweep_r_wire_ohm:g} Ω segments)", cfg.tile_sizes,
               [base.replace(tile_rows=t, tile_cols=t, r_wire=cfg.tile_sweep_r_wire_ohm) for t in cfg.tile_sizes])]
    panels = []
    for key, label, values, variants in tqdm(sweeps, desc="sweeps", unit="sweep", leave=False):
        acc = nn.accuracy_sweep(task.net, variants, task.x, task.y, task.digits.x_train, nn.engine_backend("numpy"))
        panels.append((label, np.array(values, dtype=float), acc))
        res.data[f"nn-sweep-{key}"] = _point({"hardware": _hardware_tree(base), "swept": key, "value": values},
                                             {"accuracy": acc}, {"engine": "numpy"})
    references = {"float weights": res.accuracy["float weights"][0],
                  "ideal crossbar": res.accuracy["ideal crossbar (quantized, no parasitics)"][0]}
    res.figures["nn_accuracy"] = plots.save(plots.accuracy_sweeps(
        panels, references, f"Digits MLP on crossbar tiles: exact circuit, 1R cells, σ={base.sigma_d2d:g} D2D, "
                            f"{len(task.y)} test images"), out / "nn_accuracy.png")


def _parity_figure(res: DemoResult, out: Path) -> None:
    run, spot = res.data["spice_run"]["outputs"], res.spot_check
    numpy_ua = 1e6 * np.concatenate([run["numpy_column_currents_a"].ravel(), spot.numpy_a.ravel()])
    spice_ua = 1e6 * np.concatenate([run["spice_column_currents_a"].ravel(), spot.spice_a.ravel()])
    res.figures["parity"] = plots.save(plots.parity(
        numpy_ua, spice_ua, "numpy engine", "ngspice", "Column currents, 1S1R arrays", unit="µA"), out / "parity.png")


def _print_table(res: DemoResult, echo) -> None:
    width = max(len(name) for name in res.accuracy)
    echo(f"\n  {'test accuracy':<{width}}  accuracy  images")
    for name, (acc, n) in res.accuracy.items():
        echo(f"  {name:<{width}}  {100 * acc:6.1f} %  {n:6d}")
    e = res.energy
    echo(f"\n  energy per MAC: array {e.array_fj:.2f} fJ (from the circuit's own power) + ADC {e.adc_fj:.1f} fJ "
         f"+ DAC {e.dac_fj:.2f} fJ = {e.total_fj:.1f} fJ")
    for name, value in e.digital.items():
        echo(f"  digital reference, {name}: {value:g} fJ")


def _write_results(path: Path, data: dict) -> None:
    """Every record of the tour becomes one point of a circuitsim results store, keyed by its name
    (inputs/, outputs/, provenance/ groups; read back with circuitsim.store.read_points)."""
    from circuitsim.store import Store

    with Store.open(path, "w") as store:
        for key, point in data.items():
            store.append(key, point["inputs"], point["outputs"], point["provenance"])


def run_demo(out_dir: str | Path = "demo-output", config: DemoConfig = DemoConfig(),
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the tour, writing figures, the netlist and results.h5 into out_dir."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out.resolve())
    progress = _Progress(6, echo)
    with SpiceWorker(timeout_s=120) as worker:
        progress.step("SPICE: a small 1S1R crossbar in ngspice")
        _spice_tour(config, out, worker, res, progress)
        progress.step("IR-drop map")
        _ir_drop(config, out, res, echo)
        progress.step("Sneak-path read margin against array size (worst case: far corner cell)")
        _read_margin(config, out, res, echo)
        progress.step("Neural-network inference on crossbar tiles (digits MLP)")
        task = _nn_accuracy(config, worker, res, echo)
    progress.step("Accuracy against wire resistance, ADC bits and tile size (exact circuit, numpy engine)")
    _nn_sweeps(config, task, out, res)
    _parity_figure(res, out)
    _print_table(res, echo)
    res.hdf5 = out / "results.h5"
    _write_results(res.hdf5, res.data)
    echo(f"\ndone in {time.perf_counter() - progress.start:.0f} s. Output folder: {res.out_dir}")
    for path in [*res.figures.values(), res.hdf5, out / "crossbar.cir"]:
        echo(f"  {path.name}")
    return res


# ---- `circuitsim demo-programming`: the digits MLP programmed tile by tile, accuracy over time ----

@dataclass(frozen=True)
class ProgrammingDemoConfig:
    """hidden: MLP hidden units; tile: tile rows = cols; levels: conductance levels between
    g_min_s and g_max_s; times_s / temperatures_k: reads after programming; slices: cells (column
    pairs) per weight of the bit-sliced variant (0: skip it); stuck_rates: stuck-at rates of the
    fault study (half ON, half OFF; empty: skip it)."""

    hidden: int = 16
    tile: int = 32
    levels: int = 8
    g_min_s: float = 10e-6
    g_max_s: float = 100e-6
    times_s: tuple[float, ...] = (1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0, 3.15e7, 3.15e8)
    temperatures_k: tuple[float, ...] = (300.0, 358.0)
    slices: int = 2
    stuck_rates: tuple[float, ...] = (0.005, 0.01, 0.02)


# Stanford-PKU cells behind NMOS access transistors (1T1R), ISPP at 10 ns per pulse: SET with the
# gate at 1.8 V (its saturation current is the compliance), RESET with the gate at 3 V.
DEMO_WRITE_VERIFY = dict(v_set_start=1.7, v_set_step=0.05, v_set_max=3.0, v_reset_start=1.3, v_reset_step=0.03,
                         v_reset_max=2.2, width_s=1e-8, v_read=0.1, tolerance=0.05, v_gate_set=1.8,
                         v_gate_reset=3.0)


def run_programming_demo(out_dir: str | Path = "demo-programming", config: ProgrammingDemoConfig =
                         ProgrammingDemoConfig(), echo: Callable[[str], None] = print) -> dict:
    """Program every tile of the digits MLP into 1T1R Stanford-PKU arrays by write-verify, then read
    it from 1 s to 10 years at two temperatures with and without drift compensation, the same for
    bit-sliced weights, and a fault study (accuracy against stuck-at rate per mapping); figures and
    results.h5 go to out_dir. Returns the headline numbers."""
    from circuitsim.devices import NmosAccess, StanfordPKU
    from circuitsim.programming import ReadNoise, WriteVerify
    from circuitsim.programming import plots as program_plots
    from circuitsim.programming.network import accuracy_over_time, fault_study, program_network

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = nn.load_digits_split()
    net = nn.train_mlp(data, hidden=config.hidden)
    hw = nn.Hardware(g_min_s=config.g_min_s, g_max_s=config.g_max_s, levels=config.levels, tile_rows=config.tile,
                     tile_cols=config.tile, r_wire=R_WIRE_OHM)
    mapped = nn.map_network(net, hw, data.x_train)
    wv, device, transistor = WriteVerify(**DEMO_WRITE_VERIFY), StanfordPKU(x0=0.9), NmosAccess()
    n_tiles = sum(len(layer.tiles) for layer in mapped.layers)
    echo(f"programming {n_tiles} tiles of at most {config.tile}x{config.tile} 1T1R Stanford-PKU cells "
         f"({config.levels} levels, {1e6 * config.g_min_s:g}-{1e6 * config.g_max_s:g} µS, ±{wv.tolerance:.0%})")

    def bar(done, total):
        echo(f"  [{'#' * done}{'.' * (total - done)}] {done}/{total}  (t = {time.perf_counter() - start:.0f} s)")

    cpu = time.process_time()
    programmed = program_network(mapped, device, wv, transistor=transistor, progress=bar)
    summary = {**programmed.summary, "cpu_time_s": time.process_time() - cpu}
    echo(f"  {summary['cells']} cells, {summary['pulses']} pulses ({summary['pulse_events']} row pulses), "
         f"{1e9 * summary['energy_j']:.2f} nJ, {1e3 * summary['time_s']:.3f} ms of pulses and verifies, "
         f"{summary['failed']} failed; wall {summary['wall_time_s']:.0f} s, CPU {summary['cpu_time_s']:.0f} s")
    echo("  programming error per level (converged cells): level, cells, mean, std, max |error|")
    levels = programmed.error_per_level()
    for level, errors in levels.items():
        echo(f"    {1e6 * level:6.1f} µS  {len(errors):5d}  {100 * errors.mean():+6.2f} %  "
             f"{100 * errors.std():5.2f} %  {100 * np.abs(errors).max(initial=0):5.2f} %")
    noise = ReadNoise()
    tables = {"1 pair/weight": accuracy_over_time(programmed, data.x_test, data.y_test, config.times_s,
                                                  temperatures_k=config.temperatures_k, noise=noise)}
    reference = {"float weights": nn.accuracy(net.predict(data.x_test), data.y_test),
                 "quantized, exact levels": nn.accuracy(nn.infer(mapped, data.x_test).predictions, data.y_test)}
    if config.slices > 1:
        hw_sliced = dataclasses.replace(hw, slices=config.slices)
        mapped_sliced = nn.map_network(net, hw_sliced, data.x_train)
        echo(f"\nbit-sliced weights: {config.slices} column pairs per weight")
        sliced = program_network(mapped_sliced, device, wv, transistor=transistor, progress=bar)
        reference[f"{config.slices} slices, exact levels"] = nn.accuracy(
            nn.infer(mapped_sliced, data.x_test).predictions, data.y_test)
        tables[f"{config.slices} pairs/weight"] = accuracy_over_time(
            sliced, data.x_test, data.y_test, config.times_s, temperatures_k=config.temperatures_k[:1], noise=noise)
    echo("\n  reference accuracy [%]: " + ", ".join(f"{name} {100 * acc:.1f}" for name, acc in reference.items()))
    echo("  test accuracy [%] against time after programming (rows: weights, temperature, compensation)")
    echo("  " + " " * 36 + "".join(f"{t:>10.3g}" for t in config.times_s))
    for name, table in tables.items():
        for a, temp in enumerate(table["temperatures_k"]):
            for b, comp in enumerate(table["compensations"]):
                echo(f"  {name:>14} {temp:5.0f} K {comp:>12}" + "".join(f"{100 * v:10.1f}"
                                                                      for v in table["accuracy"][a, b]))
    study = None
    if config.stuck_rates:
        echo("\nfault study: the network programmed with stuck-at cells, per mapping")
        study = fault_study(mapped, device, wv, data.x_test, data.y_test, (0.0, *config.stuck_rates),
                            transistor=transistor, seed=1,
                            progress=lambda done, total: echo(f"  run {done}/{total}  "
                                                              f"(t = {time.perf_counter() - start:.0f} s)"))
        echo("  test accuracy [%] at t = 0 against stuck-at rate")
        echo("  " + " " * 30 + "".join(f"{100 * r:>8.0f} %" for r in study["stuck_rates"]))
        for a, name in enumerate(study["mappings"]):
            echo(f"  {name:>30}" + "".join(f"{100 * v:10.1f}" for v in study["accuracy"][a]))
    figures = {"programming": plots.save(program_plots.programming_summary(programmed), out / "programming.png"),
               "accuracy_vs_time": plots.save(program_plots.accuracy_vs_time(tables, reference),
                                              out / "accuracy_vs_time.png")}
    if study is not None:
        figures["fault_study"] = plots.save(program_plots.fault_study(study), out / "fault_study.png")
    records = {"programming": _point({"hardware": _hardware_tree(hw), "write_verify": wv.as_dict()}, summary,
                                     {"device": "StanfordPKU", "transistor": "NmosAccess"}),
               **{f"accuracy_vs_time-{k}": _point({"times_s": t["times_s"], "temperatures_k": t["temperatures_k"],
                                                   "compensations": np.array(t["compensations"], dtype=object)},
                                                  {"accuracy": t["accuracy"]}, {"read_noise": vars(noise)})
                  for k, t in enumerate(tables.values())},
               "reference_accuracy": _point({"names": np.array(list(reference), dtype=object)},
                                            {"accuracy": np.array(list(reference.values()))}, {})}
    if study is not None:
        records["fault_study"] = _point({"stuck_rates": study["stuck_rates"],
                                         "mappings": np.array(study["mappings"], dtype=object)},
                                        {"accuracy": study["accuracy"], "stuck": study["stuck"]}, {})
    _write_results(out / "results.h5", records)
    echo(f"\ndone in {time.perf_counter() - start:.0f} s. Output folder: {out.resolve()}")
    return {"summary": summary, "levels": levels, "tables": tables, "reference": reference, "faults": study,
            "figures": figures}
