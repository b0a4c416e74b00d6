"""Regenerates the figures and tables of docs/dynamics.md (run from the repository root):
python docs/make_dynamics_figures.py"""
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.analysis import adc_tolerance, read_latency, read_pulse_energy
from circuitsim.devices import NmosAccess, SinhSelector
from circuitsim.plots import latency_sweep, parity, read_energy_split, read_settling, save
from circuitsim.transient import Drive, array_transient

OUT = Path(__file__).parent / "figures"
CELLS = {"1R": {}, "1S1R": {"selector": SinhSelector()}, "1T1R": {"transistor": NmosAccess()}}
# wires of a ~100 nm pitch array: 5 Ω and 0.05 fF per segment, 0.01 fF across a cell, 1 kΩ drivers
WIRES = {"r_row": 5.0, "r_col": 5.0, "c_row": 5e-17, "c_col": 5e-17, "c_cell": 1e-17, "r_driver": 1e3}
TOLERANCE = adc_tolerance(8)


def design(n: int, kind: str = "1R", seed: int = 0, **changes) -> tuple[circuitsim.Crossbar, np.ndarray]:
    rng = np.random.default_rng(seed)
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-5, (n, n)), **{**WIRES, **changes}, **CELLS[kind])
    return xb, rng.uniform(0.2, 0.4, n)


def latency_figures() -> list[str]:
    rows = ["| array | cells | latency (8-bit, ½ LSB) | read energy, 2 ns | static | dynamic |",
            "|---|---|---|---|---|---|"]
    sizes = [16, 32, 64, 128]
    by_size: dict[str, list[float]] = {}
    energies, labels = [], []
    for kind in ("1R", "1S1R"):
        for n in sizes:
            xb, v = design(n, kind)
            lat = read_latency(xb, v, tolerance=TOLERANCE)
            by_size.setdefault(kind, []).append(lat.latency_s)
            e = read_pulse_energy(xb, v, duration_s=2e-9)
            if kind == "1S1R":
                energies.append(e)
                labels.append(f"{n}²")
            rows.append(f"| {n}×{n} | {kind} | {lat.latency_s * 1e12:.1f} ps | {e.delivered_j * 1e15:.3g} fJ | "
                        f"{e.static_j * 1e15:.3g} fJ | {e.dynamic_j * 1e15:.3g} fJ |")
            if n == 128 and kind == "1S1R":
                save(read_settling(lat), OUT / "read_settling.png")
    save(latency_sweep(sizes, {k: np.array(v) for k, v in by_size.items()}, "array size n (n×n)",
                       title="Read latency vs array size (½ LSB of 8 bits)"), OUT / "latency_size.png")
    save(read_energy_split(labels, energies, title="Energy of a 2 ns 1S1R read"), OUT / "read_energy.png")
    drivers = [100.0, 300.0, 1e3, 3e3, 1e4]
    caps = [1e-17, 3e-17, 1e-16, 3e-16, 1e-15]
    lat_driver = [read_latency(*design(64, r_driver=r), tolerance=TOLERANCE).latency_s for r in drivers]
    lat_cap = [read_latency(*design(64, c_row=c, c_col=c), tolerance=TOLERANCE).latency_s for c in caps]
    save(latency_sweep(drivers, {"64×64 1R": np.array(lat_driver)}, "driver resistance [Ω]",
                       title="Read latency vs driver strength"), OUT / "latency_driver.png")
    save(latency_sweep(caps, {"64×64 1R": np.array(lat_cap)}, "wire capacitance per segment [F]",
                       title="Read latency vs wire capacitance (5 Ω segments)"), OUT / "latency_wire_c.png")
    rows += ["", "| 64×64 1R, driver | " + " | ".join(f"{r:g} Ω" for r in drivers) + " |",
             "|---|" + "---|" * len(drivers),
             "| latency | " + " | ".join(f"{t * 1e12:.1f} ps" for t in lat_driver) + " |",
             "", "| 64×64 1R, c per segment | " + " | ".join(f"{c * 1e15:g} fF" for c in caps) + " |",
             "|---|" + "---|" * len(caps),
             "| latency | " + " | ".join(f"{t * 1e12:.1f} ps" for t in lat_cap) + " |"]
    return rows


def agreement_figures() -> list[str]:
    """numpy vs ngspice .tran on 12×12 read transients of each cell type (100 ps edge, 2 ns)."""
    rows = ["| cells | ngspice points | max abs(numpy − ngspice) / full scale |", "|---|---|---|"]
    for kind in CELLS:
        xb, v = design(12, kind, seed=1)
        drive = Drive([0.0, 1e-10, 2e-9], np.outer([0, 1, 1], v), np.zeros((3, 12)))
        spice = array_transient(xb, None, drive, engine="spice", detail=False)
        mine = array_transient(xb, None, drive, engine="numpy", detail=False, t_eval=spice.time_s)
        error = np.max(np.abs(mine.column_currents - spice.column_currents)) / np.max(np.abs(spice.column_currents))
        rows.append(f"| {kind} | {len(spice.time_s)} | {error:.1e} |")
        if kind == "1S1R":
            save(parity(spice.column_currents, mine.column_currents, "ngspice .tran", "numpy engine",
                        title="12×12 1S1R read transient, column currents"), OUT / "transient_parity.png")
    return rows


def main():
    OUT.mkdir(exist_ok=True)
    print("\n".join(agreement_figures() + [""] + latency_figures()))


if __name__ == "__main__":
    main()
