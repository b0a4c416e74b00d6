"""Regenerates the figures and tables of docs/wires-and-waveforms.md (run from the repository root):
python docs/make_pulse_figures.py [engine]   (default numpy; "spice" runs the same through ngspice)"""
import sys
import time
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim import wires
from circuitsim.plots import pulse_mvm, save, write_pulse
from circuitsim.pulse_mvm import bit_serial_mvm, pwm_mvm
from circuitsim.pulse_mvm import write_pulse as run_write

OUT = Path(__file__).parent / "figures"
ROW, COL = wires.preset("imac-sim-row"), wires.preset("imac-sim-col")


def imac_array(g: np.ndarray, r_driver: float, c_cell: float = 0.5e-15) -> circuitsim.Crossbar:
    """An array on IMAC-Sim's wire stack with c_cell across every cell."""
    return circuitsim.Crossbar(conductance=g, r_row=ROW.r_segment_ohm, r_col=COL.r_segment_ohm,
                               c_row=ROW.c_ground_f, c_col=COL.c_ground_f, c_couple=ROW.c_couple_f,
                               c_cell=c_cell, r_driver=r_driver)


def mvm_table(engine: str) -> None:
    """32×32, cells between NeuroSim's 100 kΩ and 1.7 MΩ, every fourth input at full scale."""
    rng = np.random.default_rng(0)
    g = rng.uniform(1 / 1.7e6, 1 / 100e3, (32, 32))
    x = rng.uniform(0, 1, 32)
    x[::4] = 1.0
    ints = rng.integers(0, 16, 32)
    print("| driver | encoding | max error vs DC | max error vs G·V | wall time [s] |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for r_driver in (100.0, 1e3, 1e4):
        xb = imac_array(g, r_driver)
        runs = {"PWM, 2 ns full scale": lambda: pwm_mvm(xb, x, amplitude_v=0.2, full_width_s=2e-9, edge_s=0.1e-9,
                                                        engine=engine),
                "bit-serial, 4 × 0.5 ns slots": lambda: bit_serial_mvm(
                    xb, ints, bits=4, amplitude_v=0.2, slot_s=0.5e-9, width_s=0.25e-9, edge_s=0.05e-9, engine=engine)}
        for encoding, run in runs.items():
            start = time.perf_counter()
            mvm = run()
            wall = time.perf_counter() - start
            print(f"| {r_driver:g} Ω | {encoding} | {100 * np.abs(mvm.error_vs_dc).max():.2g} % | "
                  f"{100 * np.abs(mvm.error_vs_ideal).max():.2g} % | {wall:.2g} |")
            if r_driver == 1e4 and encoding.startswith("PWM"):
                save(pulse_mvm(mvm, title="32×32, IMAC-Sim wires, 0.5 fF cells, 10 kΩ drivers"),
                     OUT / "pulse_mvm.png")


def write_table(engine: str) -> None:
    """A 1.2 V, 1 ns write along one long row (2×n array, 1 MΩ cells, 100 Ω drivers, V/2)."""
    print("| row length n | cell | peak [V] | delay [ps] | time above 0.6 V [ns] | wall time [s] |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n in (128, 256, 512, 1024):
        start = time.perf_counter()
        wp = run_write(imac_array(np.full((2, n), 1e-6), 100.0), amplitude_v=1.2, width_s=1e-9, edge_s=0.05e-9,
                       engine=engine)
        wall = time.perf_counter() - start
        for k, cell in enumerate(wp.cells):
            print(f"| {n} | {cell} | {wp.peak_v[k]:.3f} | {wp.delay_s[k] * 1e12:.0f} | {wp.width_s[k] * 1e9:.3f} | "
                  f"{wall:.2g} |")
        if n == 512:
            save(write_pulse(wp, title="2×512, IMAC-Sim wires, 0.5 fF cells"), OUT / "write_pulse.png")


def main(engine: str = "numpy"):
    OUT.mkdir(exist_ok=True)
    mvm_table(engine)
    write_table(engine)


if __name__ == "__main__":
    main(*sys.argv[1:])
