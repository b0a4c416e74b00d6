"""Round-trip table of docs/characterization.md: the default-suite and slow configurations of
tests/test_fit.py (run from the repository root: python docs/round_trip_table.py)."""
import sys
import time

import numpy as np

sys.path.insert(0, "tests")
from test_fit import (  # the test module is the single source of the configurations
    NOISE_REL,
    ROUND_TRIPS,
    F,
    Measurement,
    make_device,
    measured,
    sampled_loop,
    vteam_pulse_train,
)


def table(title: str, fit_once) -> None:
    start = time.time()
    result, true = fit_once()
    rms = ", ".join(f"{f['rms_ln_i']:.4f}" for f in result.figures)
    print(f"\n**{title}** ({time.time() - start:.1f} s, {result.provenance['evaluations']} evaluations, "
          f"converged {result.provenance['converged']}; rms ln|I| per file {rms})")
    print("| parameter | true | fitted ± 1σ | error | error/σ |\n|---|---|---|---|---|")
    for k, t in true.items():
        v, s = result.values[k], result.sigma[k]
        print(f"| {k} | {t:.4g} | {v:.4g} ± {s:.2g} | {v / t - 1:+.2%} | {(v - t) / s:+.1f} |")
    if result.spice_check:
        print("\nngspice check, rms ln |I_spice/I_twin| per file: "
              + ", ".join(f"{r:.2g}" for r in result.spice_check["rms_ln_i_spice_vs_twin"]))


def default_suite(model):
    true, names, peak, period, x0, _ = ROUND_TRIPS[model]
    t, v = sampled_loop(peak, period, 200)
    return F.fit(model, [measured(model, true, t, v, x0, seed=1)], names=names, spice_check=False), true


def vteam_full():
    true = {"ron": 80.0, "roff": 1.5e3, "kon": -5.0, "koff": 1e-3, "von": -0.25, "voff": 0.03}
    loop = measured("vteam", true, *sampled_loop(0.5, 1e-4, 400), 0.05, seed=1, engine="spice")
    train = measured("vteam", true, *vteam_pulse_train(), 0.95, seed=2, engine="spice")
    return F.fit("vteam", [loop, train]), true


def yakopcic_full():
    true = {"a1": 0.2, "a2": 0.12, "vp": 0.2, "vn": 0.12, "ap": 3000.0, "an": 6000.0}
    t, v = sampled_loop(1.0, 2e-2, 400)
    return F.fit("yakopcic", [measured("yakopcic", true, t, v, 0.11, seed=1)], names=tuple(true),
                 spice_check=False), true


def lid_two_temperatures():
    true = {"ron": 150.0, "roff": 1e4, "uv": 2e-14}
    t, v = sampled_loop(1.0, 2.0, 200)
    data = [measured("lid_biolek", true, t, v, 0.01, seed=1, temperature_k=300.0)]
    hot = make_device("lid_biolek", {**true, "uv": true["uv"] * np.exp(-0.45 / 8.617333262e-5 * (1 / 350 - 1 / 300))})
    noise = 1 + NOISE_REL * np.random.default_rng(2).standard_normal(len(t))
    data.append(Measurement(t, v, F.twin_current(hot, t, v, 0.01) * noise, 350.0, "hot", "2"))
    return F.fit("lid_biolek", data, spice_check=False), {**true, "ea_ev": 0.45}


if __name__ == "__main__":
    for model in sorted(ROUND_TRIPS):
        table(f"{model}, one loop of 200 samples (default suite)", lambda m=model: default_suite(m))
    table("vteam, loop + pulse train generated in ngspice (slow)", vteam_full)
    table("yakopcic, six parameters, one loop of 400 samples (slow)", yakopcic_full)
    table("lid_biolek at 300 K and 350 K, Ea fitted (slow)", lid_two_temperatures)
