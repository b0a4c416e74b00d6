"""Regenerates the figures of docs/characterization.md (run from the repository root):
python docs/make_characterization_figures.py"""
from pathlib import Path

import numpy as np

from circuitsim.characterize import fit as F
from circuitsim.characterize.measured import Measurement
from circuitsim.characterize.plots import fit_overlay, plot
from circuitsim.characterize.protocols import characterize, pulse_sequence, triangle
from circuitsim.characterize.settings import make_device
from circuitsim.plots import parity, save

OUT = Path(__file__).parent / "figures"


def synthetic(model, true, t, v, x0, seed):
    """The model's twin current plus 2% relative noise and a 1 pA floor (what the round-trip tests fit)."""
    i = F.twin_current(make_device(model, true), t, v, x0)
    rng = np.random.default_rng(seed)
    i = i * (1 + 0.02 * rng.standard_normal(len(i))) + 1e-12 * rng.standard_normal(len(i))
    return Measurement(t, v, i, 300.0, "synthetic", f"{seed:064d}")


def main():
    OUT.mkdir(exist_ok=True)
    runs = {"loop_stanford_pku": ("loop", "stanford_pku", {"loop_cycles": 1}),
            "loop_stanford_pku_smu_1mA": ("loop", "stanford_pku", {"loop_cycles": 1, "compliance_a": 1e-3}),
            "loop_stanford_pku_1t1r": ("loop", "stanford_pku", {"loop_cycles": 1, "gate_v": 1.2}),
            "ptdp_stanford_pku": ("ptdp", "stanford_pku", {}),
            "temperature_stanford_pku": ("temperature", "stanford_pku", {"loop_cycles": 1}),
            "mlc_stanford_pku_smu": ("mlc", "stanford_pku", {"mlc_compliance_a": (2e-4, 5e-4, 1e-3)}),
            "pulse_vteam": ("pulse", "vteam", {})}
    for name, (protocol, model, settings) in runs.items():
        save(plot(characterize(protocol, model, **settings)), OUT / f"{name}.png")
    true = {"ron": 80.0, "roff": 1.5e3, "kon": -5.0, "koff": 1e-3, "von": -0.25, "voff": 0.03}
    t = np.linspace(0, 1e-4, 401)
    stim = triangle(0.5, 1e-4, 1)
    loop = synthetic("vteam", true, t, np.interp(t, stim.time_s, stim.volts), 0.05, 1)
    stim = pulse_sequence([(-0.33, 2e-9)] * 8 + [(1.0, 1e-8)] * 8, 0.01, 2e-9, edge_s=5e-10)
    t = np.arange(0.0, stim.time_s[-1], 2.5e-10)
    train = synthetic("vteam", true, t, np.interp(t, stim.time_s, stim.volts), 0.95, 2)
    result = F.fit("vteam", [loop, train])
    save(fit_overlay([result]), OUT / "fit_vteam.png")
    rng = np.random.default_rng(0)
    ref = rng.uniform(1e-5, 3e-4, 200)
    save(parity(ref, ref * (1 + 1e-3 * rng.standard_normal(200)), "SPICE", "surrogate", "Parity (example data)"),
         OUT / "parity_example.png")
    for k, v in result.values.items():
        print(f"{k} = {v:.6g} ± {result.sigma[k]:.2g}   (true {true.get(k, '-')})")
    print("ngspice vs twin:", result.spice_check)


if __name__ == "__main__":
    main()
