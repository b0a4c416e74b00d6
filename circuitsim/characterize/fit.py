"""Fitting a compact model to measured waveforms (circuitsim.characterize.measured).

Bounded least squares (scipy.optimize.least_squares, trust-region reflective) on what a lab
trusts: ln|I| along every measured waveform (the I-V loop in log |I|, the reads of a pulse
train, i.e. its conductance trajectory), plus the switching voltages of every full I-V loop.
The inner model is the numpy twin driven by the measured voltage itself; the fitted device is
then run once in ngspice on the same drives (the final check). Each file's start state x0 is
fitted too (a lab rarely knows it). Parameters are fitted as ln|p| (sign kept), so the
uncertainties come from the Jacobian in that space: σ_p = |p|·σ_ln p, with
cov = (JᵀJ)⁻¹·SSR/(m − n).

Temperatures: a device's rates follow the characterization's temperature law
(protocols.at_temperature); with two or more stage temperatures its activation energy ea_ev
is fitted as well.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, fields

import numpy as np
from scipy.integrate import odeint
from scipy.optimize import least_squares

from circuitsim import __version__
from circuitsim.characterize import extract
from circuitsim.characterize.measured import Measurement
from circuitsim.characterize.protocols import KB_EV_PER_K, at_temperature
from circuitsim.characterize.settings import Settings, make_device
from circuitsim.devices.library import lib_path
from circuitsim.devices.memristors import StateDevice
from circuitsim.files import write_atomically
from circuitsim.netlist import number
from circuitsim.validate import spice_name

# What is fitted per model: the levels, rates and thresholds a loop and a pulse train reveal;
# shape exponents and window constants stay at their defaults (they trade off against the rates).
FIT_PARAMS = {
    "vteam": ("ron", "roff", "kon", "koff", "von", "voff"),
    "yakopcic": ("a1", "a2", "b", "vp", "vn", "ap", "an"),
    "lid_joglekar": ("ron", "roff", "uv"),
    "lid_biolek": ("ron", "roff", "uv"),
    "stanford_pku": ("i0", "g0", "v0", "vel0"),
}
LOCAL_STARTS = 3  # local fits run from the best few coarse-grid starts (see fit)
SPAN_LN = np.log(100.0)  # each parameter is searched within 100x of its start value
FLOOR_A = 1e-12  # [A] measurement floor: samples below it carry no ln|I|
V_MIN_FRACTION = 0.02  # samples with |V| below this share of the peak are left out (I ~ 0 there)
SWITCH_WEIGHT = 0.05  # a switching-voltage miss of one voltage step between samples weighs like one sample
# whose current is 5% off: the extracted voltages move in kinks as the loop changes, so they
# steer the fit without dominating the (smooth) ln|I| misfits
READ_FRACTION = 0.1  # loops are read at this share of their peak voltage (R_on, R_off)
ILL_CONDITIONED = 1e12
START_RATE_FACTORS = np.geomspace(0.02, 50.0, 9)  # grid of the coarse starts (see _coarse_starts)
START_LEVEL_FACTORS = np.geomspace(0.2, 5.0, 5)  # cond(JᵀJ) beyond this: the data does not determine every parameter


@dataclass(frozen=True, eq=False)
class Fit:
    """A fitted device: model, params (every parameter of the device), fitted (names fitted),
    values and sigma (fitted value and 1σ uncertainty by name; x0 of each file as x0_<k>,
    ea_ev when several temperatures), residuals per file, figures measured vs fitted,
    the data's sha256s, the ngspice check and provenance."""

    model: str
    params: dict
    values: dict
    sigma: dict
    residuals: list
    figures: list
    sha256: list
    spice_check: dict
    provenance: dict

    def device(self, temperature_k: float | None = None) -> StateDevice:
        """The fitted device (at temperature_k under the temperature law, if given)."""
        d = make_device(self.model, self.params)
        if temperature_k is None:
            return d
        return at_temperature(d, temperature_k, Settings(ea_ev=self.values.get("ea_ev", Settings.ea_ev)))


# ---- the inner model: the twin on a measured drive ---------------------------------------

def batched(device: StateDevice, table: dict[str, np.ndarray]) -> StateDevice:
    """A device object whose parameters in `table` are arrays (one entry per parameter set), so
    one integration runs every finite-difference neighbour of a Jacobian at once. Built without
    the dataclass checks: each set was checked when it was made (make_device)."""
    out = object.__new__(type(device))
    for f in fields(device):
        object.__setattr__(out, f.name, np.asarray(table.get(f.name, getattr(device, f.name)), dtype=float))
    return out


def twin_current(device: StateDevice, time_s: np.ndarray, voltage_v: np.ndarray, x0) -> np.ndarray:
    """Current [A] at time_s of the device (possibly batched, see `batched`) driven by the PWL
    voltage_v from state x0 (scalar or one per set): shape (len(time_s),) or (len(time_s), sets)."""
    x0 = np.atleast_1d(np.asarray(x0, dtype=float))

    def rate(x, t):
        return device.dxdt(np.interp(t, time_s, voltage_v), x)

    # LSODA through odeint: its per-step cost is ~half solve_ivp's, and a fit runs hundreds of these
    states, info = odeint(rate, x0, time_s, hmax=float(np.min(np.diff(time_s))), rtol=1e-6, atol=1e-8,
                          full_output=True)
    if info["message"] != "Integration successful.":
        raise RuntimeError(f"fit: the twin's integration failed: {info['message']}")
    current = device.current(voltage_v[:, None], states)
    return current[:, 0] if current.shape[1] == 1 else current


# ---- residuals -----------------------------------------------------------------------------

def _usable(m: Measurement) -> np.ndarray:
    return (np.abs(m.voltage_v) >= V_MIN_FRACTION * np.max(np.abs(m.voltage_v))) & (np.abs(m.current_a) > FLOOR_A)


def loop_switching(m: Measurement, current_a: np.ndarray) -> np.ndarray | None:
    """(V_set, V_reset) [V] of a waveform that is one full I-V loop, None for anything else."""
    v_read = READ_FRACTION * np.max(np.abs(m.voltage_v))
    try:
        f = extract.loop_figures(m.voltage_v, current_a, v_read)
    except ValueError:
        return None
    return np.array([f.v_set_v, f.v_reset_v])


def _file_residuals(m: Measurement, simulated: np.ndarray, switching_measured) -> np.ndarray:
    """(misfits, sets) of one file's simulated currents (samples, sets): ln|I| at the usable
    samples, then the switching voltages (if the file is a loop)."""
    keep = _usable(m)
    parts = [np.log(np.maximum(np.abs(simulated[keep]), FLOOR_A)) - np.log(np.abs(m.current_a[keep]))[:, None]]
    if switching_measured is not None:
        scale = np.max(np.abs(np.diff(m.voltage_v))) / SWITCH_WEIGHT
        found = np.array([_switching_or_far(m, s, switching_measured) for s in simulated.T])
        parts.append(((found - switching_measured) / scale).T)
    return np.concatenate(parts)


def _switching_or_far(m: Measurement, simulated: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """The simulated switching voltages; where the simulated loop does not switch, the sweep's
    peak on that side (as far as the loop can miss)."""
    found = loop_switching(m, simulated)
    peak = np.max(np.abs(m.voltage_v)) * np.sign(measured)
    return peak if found is None else np.where(np.isfinite(found), found, peak)


# ---- the fit ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Problem:
    model: str
    base: dict  # every parameter's start value
    names: tuple  # fitted model parameters
    measurements: tuple
    fit_ea: bool
    switching: tuple  # measured (V_set, V_reset) per file or None

    @property
    def labels(self) -> list[str]:
        return ([*self.names] + (["ea_ev"] if self.fit_ea else [])
                + [f"x0_{k}" for k in range(len(self.measurements))])


def _unpack(problem: _Problem, u: np.ndarray) -> tuple[dict, float, np.ndarray]:
    """(model parameters, ea_ev, start states) from the fit vector u (columns: sets)."""
    n = len(problem.names)
    signs = np.array([np.sign(problem.base[p]) or 1.0 for p in problem.names])
    params = {p: signs[k] * np.exp(u[k]) for k, p in enumerate(problem.names)}
    ea = np.exp(u[n]) if problem.fit_ea else Settings.ea_ev
    return params, ea, u[n + problem.fit_ea:]


def _simulate_all(problem: _Problem, u_sets: np.ndarray) -> list[np.ndarray]:
    """Simulated current of every file for parameter sets u_sets (n_u, sets): (samples, sets) each."""
    params, ea, x0s = _unpack(problem, u_sets)
    base = make_device(problem.model, problem.base)
    device = batched(base, params)
    out = []
    for m, x0 in zip(problem.measurements, x0s):
        current = twin_current(_at_temperature_batched(base, device, m.temperature_k, ea), m.time_s, m.voltage_v, x0)
        out.append(current if current.ndim == 2 else current[:, None])
    return out


def _at_temperature_batched(base: StateDevice, device: StateDevice, temperature_k: float, ea_ev) -> StateDevice:
    """The temperature law of protocols.at_temperature on a batched device (ea_ev may be an array)."""
    if base.temperature_param:
        return batched(device, {base.temperature_param: temperature_k})
    factor = np.exp(-np.asarray(ea_ev) / KB_EV_PER_K * (1.0 / temperature_k - 1.0 / Settings.t_ref_k))
    return batched(device, {p: getattr(device, p) * factor for p in base.rate_params})


def _residuals(problem: _Problem, u_sets: np.ndarray) -> np.ndarray:
    """(residuals, sets) for parameter sets u_sets (n_u, sets)."""
    sims = _simulate_all(problem, u_sets)
    return np.concatenate([_file_residuals(m, s, sw) for m, s, sw in
                           zip(problem.measurements, sims, problem.switching)])


def _start_state(device: StateDevice, m: Measurement) -> float:
    """x0 whose current matches the first usable sample (the state is unknown before the first
    switch), by a grid search in ln|I|."""
    k = int(np.flatnonzero(_usable(m))[0])
    grid = np.linspace(0.01, 0.99, 99)
    miss = np.abs(np.log(np.maximum(np.abs(device.current(m.voltage_v[k], grid)), FLOOR_A))
                  - np.log(abs(m.current_a[k])))
    return float(grid[np.argmin(miss)])


def fit(model: str, measurements: list[Measurement], start: dict | None = None, *,
        names: tuple[str, ...] | None = None, spice_check: bool = True, max_evaluations: int = 200) -> Fit:
    """Fit `model`'s FIT_PARAMS (or `names`) to the measurements, starting from its defaults with
    `start` changed; every other parameter stays at its start value. A fit stopped by
    max_evaluations is not converged: its uncertainties are NaN (provenance['converged'] False)."""
    if model not in FIT_PARAMS:
        raise ValueError(f"no fit is defined for model {model!r}; choose one of {sorted(FIT_PARAMS)}")
    if not measurements:
        raise ValueError("fit needs at least one measurement")
    base_device = make_device(model, start)
    names = tuple(FIT_PARAMS[model] if names is None else names)
    for p in names:
        if p not in base_device.spice_params():
            raise ValueError(f"{model} has no parameter {p!r}")
        if getattr(base_device, p) == 0:
            raise ValueError(f"{model}.{p} starts at 0; fitted parameters are searched in ln|p|, give a start value")
    base = base_device.spice_params()
    fit_ea = len({m.temperature_k for m in measurements}) > 1 and not base_device.temperature_param
    switching = tuple(_measured_switching(m) for m in measurements)
    problem = _Problem(model, base, names, tuple(measurements), fit_ea, switching)
    u0 = np.concatenate([[np.log(abs(base[p])) for p in names], [np.log(Settings.ea_ev)] if fit_ea else [],
                         [_start_state(base_device, m) for m in measurements]])
    lower = np.concatenate([u0[:len(names) + fit_ea] - SPAN_LN, np.full(len(measurements), 1e-3)])
    upper = np.concatenate([u0[:len(names) + fit_ea] + SPAN_LN, np.full(len(measurements), 1 - 1e-3)])
    start_time = time.perf_counter()
    starts = _coarse_starts(problem, base_device, u0)
    step = np.concatenate([np.full(len(names) + fit_ea, 1e-4), np.full(len(measurements), 1e-5)])

    def jac(u):
        sets = np.column_stack([u + np.diag(step)[:, k] for k in range(len(u))])
        return (_residuals(problem, sets) - _residuals(problem, u[:, None])) / step

    # the cost surface of threshold models is rough at the sampling scale (a threshold crossing moves
    # from one sample to the next): local fits from the best few grid starts, the lowest cost kept
    evaluations, sol = 0, None
    for u_start in starts:
        local = least_squares(lambda u: _residuals(problem, u[:, None])[:, 0], u_start, jac=jac,
                              bounds=(lower, upper), x_scale=1.0, max_nfev=max_evaluations, xtol=1e-10, ftol=1e-10)
        evaluations += local.nfev
        if sol is None or local.cost < sol.cost:
            sol = local
    values, sigma = _estimates(problem, sol)
    if sol.status == 0:  # stopped by max_evaluations: not a minimum, so the Jacobian's σ mean nothing
        sigma = dict.fromkeys(sigma, float("nan"))
    params = {**base, **{p: values[p] for p in names}, "x0": values["x0_0"]}  # the .lib starts as file 0 did
    sims = [s[:, 0] for s in _simulate_all(problem, sol.x[:, None])]
    figures = [_comparison(m, s, sw) for m, s, sw in zip(measurements, sims, switching)]
    at_bound = [lab for lab, u, lo, hi in zip(problem.labels, sol.x, lower, upper)
                if min(u - lo, hi - u) < 1e-6 * max(1.0, abs(u))]
    result = Fit(model, params, values, sigma, [f["residual_ln_i"] for f in figures], figures,
                 [m.sha256 for m in measurements], {},
                 {"circuitsim_version": __version__, "optimizer": "scipy.optimize.least_squares (trf)",
                  "evaluations": int(evaluations), "status": sol.message, "converged": bool(sol.status > 0),
                  "cost": float(sol.cost),
                  "at_bounds": at_bound, "fitted": list(names), "start": dict(base),
                  "wall_time_s": time.perf_counter() - start_time})
    if spice_check:
        result = dataclasses.replace(result, spice_check=check_in_spice(result, measurements))
    return result


def _coarse_starts(problem: _Problem, device: StateDevice, u0: np.ndarray) -> list[np.ndarray]:
    """The LOCAL_STARTS best starts on a grid of factors on the fitted rate and level parameters (device.rate_params,
    device.bound_params), all run in one batched integration: a local fit from a device that does
    not switch within the data, or switches far too much, finds no way downhill."""
    rate = np.array([p in device.rate_params for p in problem.names] + [False] * (len(u0) - len(problem.names)))
    level = np.array([p in device.bound_params for p in problem.names] + [False] * (len(u0) - len(problem.names)))
    rate_grid = np.log(START_RATE_FACTORS) if rate.any() else [0.0]
    level_grid = np.log(START_LEVEL_FACTORS) if level.any() else [0.0]
    sets = np.column_stack([u0 + a * rate + b * level for a in rate_grid for b in level_grid])
    cost = np.sum(_residuals(problem, sets) ** 2, axis=0)
    return [sets[:, k] for k in np.argsort(cost)[:LOCAL_STARTS]]


def _measured_switching(m: Measurement):
    found = loop_switching(m, m.current_a)
    return None if found is None or not np.all(np.isfinite(found)) else found


def _estimates(problem: _Problem, sol) -> tuple[dict, dict]:
    """Fitted values and 1σ from the Jacobian at the solution (NaN where JᵀJ is singular)."""
    params, ea, x0s = _unpack(problem, sol.x[:, None])
    jtj = sol.jac.T @ sol.jac
    dof = max(len(sol.fun) - len(sol.x), 1)
    s2 = 2 * sol.cost / dof
    if np.linalg.cond(jtj) > ILL_CONDITIONED:
        sd_u = np.full(len(sol.x), np.nan)
    else:
        sd_u = np.sqrt(np.maximum(np.diag(np.linalg.inv(jtj)) * s2, 0.0))
    values, sigma = {}, {}
    n = len(problem.names)
    for k, p in enumerate(problem.names):
        values[p] = float(params[p][0])
        sigma[p] = float(abs(values[p]) * sd_u[k])
    if problem.fit_ea:
        values["ea_ev"], sigma["ea_ev"] = float(ea[0]), float(ea[0] * sd_u[n])
    for k, x0 in enumerate(x0s):
        values[f"x0_{k}"], sigma[f"x0_{k}"] = float(x0[0]), float(sd_u[n + problem.fit_ea + k])
    return values, sigma


def _comparison(m: Measurement, simulated: np.ndarray, switching_measured) -> dict:
    keep = _usable(m)
    residual = np.log(np.maximum(np.abs(simulated[keep]), FLOOR_A)) - np.log(np.abs(m.current_a[keep]))
    out = {"time_s": m.time_s, "voltage_v": m.voltage_v, "current_measured_a": m.current_a,
           "current_fitted_a": simulated, "residual_ln_i": residual,
           "rms_ln_i": float(np.sqrt(np.mean(residual**2))), "temperature_k": m.temperature_k}
    if switching_measured is not None:
        out["switching_measured_v"] = switching_measured
        out["switching_fitted_v"] = _switching_or_far(m, simulated, switching_measured)
    return out


def check_in_spice(result: Fit, measurements: list[Measurement]) -> dict:
    """Run the fitted device in ngspice on every measured drive: rms of ln|I_spice/I_twin| per
    file (the twin is what was fitted; this says ngspice reproduces it)."""
    from circuitsim.transient import single_drive, transient

    rms = []
    for k, m in enumerate(measurements):
        device = result.device(m.temperature_k).with_state(result.values[f"x0_{k}"])
        run = transient(device, single_drive(m.time_s - m.time_s[0], m.voltage_v), engine="spice",
                        max_step_s=float(np.min(np.diff(m.time_s))))
        i_spice = np.interp(m.time_s - m.time_s[0], run.time_s, run.current_a)
        keep = _usable(m)
        twin = result.figures[k]["current_fitted_a"][keep]
        diff = np.log(np.maximum(np.abs(i_spice[keep]), FLOOR_A)) - np.log(np.maximum(np.abs(twin), FLOOR_A))
        rms.append(float(np.sqrt(np.mean(diff**2))))
    return {"rms_ln_i_spice_vs_twin": rms}


# ---- device-to-device spread --------------------------------------------------------------

def spread(fits: list[Fit]) -> tuple[StateDevice, dict[str, float]]:
    """(median device, {parameter: σ of ln|p|}) over fits of several devices of one model: what
    circuitsim.variability.device_to_device(device, shape, sigma_ln=table, seed=...) samples."""
    if len(fits) < 2 or len({f.model for f in fits}) != 1:
        raise ValueError("a device-to-device spread needs fits of at least two devices of one model")
    names = [p for p in fits[0].params if p in FIT_PARAMS[fits[0].model]]
    table = {p: np.array([f.params[p] for f in fits]) for p in names}
    median = {p: float(np.sign(v[0]) * np.exp(np.median(np.log(np.abs(v))))) for p, v in table.items()}
    sigma = {p: float(np.std(np.log(np.abs(v)), ddof=1)) for p, v in table.items()}
    return make_device(fits[0].model, {**fits[0].params, **median}), sigma


# ---- outputs: .lib and HDF5 ----------------------------------------------------------------

def subckt_text(device: StateDevice, name: str) -> str:
    """The device's subckt from its model library (models/*.lib) renamed `name`, with the device's
    parameters as its defaults. Only numbers and the validated name enter the text."""
    spice_name(name)
    src = device.spice_subckt
    lines = lib_path(device.spice_lib).read_text().splitlines()
    head = next(k for k, line in enumerate(lines) if line.lower().startswith(f".subckt {src} "))
    tail = next(k for k in range(head, len(lines)) if lines[k].lower().startswith(f".ends {src}"))
    params = " ".join(f"{k}={number(v)}" for k, v in device.spice_params().items())
    return "\n".join([f".subckt {name} p n params: {params}", *lines[head + 1:tail], f".ends {name}"])


def write_lib(fits: list[Fit], path, name: str) -> StateDevice:
    """A .lib file holding the fitted subckt (one device's fit, or the median device of several),
    written whole or not at all; returns the device it holds."""
    device = fits[0].device() if len(fits) == 1 else spread(fits)[0]
    header = [f"* circuitsim {__version__}: {fits[0].model} fitted to measured data "
              + ("" if len(fits) == 1 else f"(median of {len(fits)} devices)"),
              "* data sha256: " + ", ".join(s[:16] for f in fits for s in f.sha256)]
    if len(fits) == 1:
        header.append("* fitted (value +- 1 sigma): " + ", ".join(
            f"{k}={v:.4g}+-{fits[0].sigma[k]:.2g}" for k, v in fits[0].values.items() if not k.startswith("x0")))
    text = "\n".join([*header, subckt_text(device, name), ""])
    write_atomically(path, lambda fh: fh.write(text.encode()))
    return device


def save(results: list[Fit], path, lib_name: str) -> str:
    """Write the fits (values, uncertainties, residuals, data sha256, the twin's full parameter
    set, figures, the ngspice check) as one point of an HDF5 store (circuitsim.store)."""
    from circuitsim.store import Store

    inputs = {"model": results[0].model, "sha256": [s for r in results for s in r.sha256],
              "start": results[0].provenance["start"], "fitted": results[0].provenance["fitted"]}
    outputs = {f"device_{k}": {"params": r.params, "values": r.values, "sigma": r.sigma,
                               "residuals": {f"file_{j}": res for j, res in enumerate(r.residuals)},
                               "comparison": {f"file_{j}": f for j, f in enumerate(r.figures)},
                               "spice_check": r.spice_check}
               for k, r in enumerate(results)}
    provenance = {"circuitsim_version": __version__, "lib_subckt": lib_name,
                  "data_sha256": hashlib.sha256("".join(inputs["sha256"]).encode()).hexdigest(),
                  **{f"device_{k}": {key: v for key, v in r.provenance.items() if key != "start"}
                     for k, r in enumerate(results)}}
    with Store.open(path, "a") as store:
        return store.append(None, inputs, outputs, provenance)


def fit_files(paths, model: str, out, *, temperatures_k=None, start: dict | None = None, names=None,
              per_device: bool = False, lib_name: str | None = None, plot_path=None,
              max_evaluations: int = 200) -> tuple[list[Fit], str]:
    """`circuitsim fit`: read the CSV files (measured.read_measurement; temperatures_k one per file,
    or one for all), fit them as one device (or, per_device, each file as its own device), then
    write out (HDF5), the .lib next to it (subckt lib_name, default <model>_fit) and the overlay
    figure. Everything is checked and fitted before the first file is written."""
    from pathlib import Path

    from circuitsim.characterize.measured import read_measurement

    paths = [Path(p) for p in paths]
    temps = [300.0] * len(paths) if temperatures_k is None else [float(t) for t in np.atleast_1d(temperatures_k)]
    if len(temps) == 1:
        temps *= len(paths)
    if len(temps) != len(paths):
        raise ValueError(f"--temperature-k takes one value or one per file ({len(paths)}), got {len(temps)}")
    lib_name = spice_name(lib_name or f"{model}_fit")
    out = Path(out)
    if out.suffix not in (".h5", ".hdf5") or not out.parent.is_dir():
        raise ValueError(f"--out {out}: give an .h5 file in an existing folder")
    data = [read_measurement(p, t) for p, t in zip(paths, temps)]
    groups = [[m] for m in data] if per_device else [data]
    fits = [fit(model, group, start, names=names, max_evaluations=max_evaluations) for group in groups]
    write_lib(fits, out.with_suffix(".lib"), lib_name)
    if plot_path is not None:
        from circuitsim.characterize.plots import fit_overlay
        from circuitsim.plots import save as save_figure

        save_figure(fit_overlay(fits), plot_path)
    key = save(fits, out, lib_name)
    return fits, key


def load(path, device: int = 0) -> StateDevice:
    """The fitted device (the twin with every fitted parameter) stored by `save` in the HDF5 file at
    path; in an array it renders as the library subckt with these parameters."""
    from circuitsim.store import read_points

    points = read_points(path)
    if not len(points["key"]):
        raise ValueError(f"{path}: no fit stored")
    prefix = f"outputs/device_{device}/params/"
    params = {name[len(prefix):]: float(v[-1]) for name, v in points.items() if name.startswith(prefix)}
    if not params:
        raise ValueError(f"{path}: no device {device} in the fit")
    return make_device(str(points["inputs/model"][-1]), params)
