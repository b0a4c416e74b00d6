"""Device characterization protocols: the datasets a lab measures, produced in ngspice.

Each protocol drives memristor models (circuitsim.devices.memristors) with the stimulus a
lab would apply, records the waveforms, and extracts the figures with circuitsim.characterize.extract
from voltage and current alone, so engine="numpy" (the twin) gives comparable figures.

Several devices of one protocol run side by side in one transient: a 1×N array without
wire resistance whose row is held at 0 V and whose column j is driven with −V_j(t), so
device j sees exactly its own V_j(t) (all on one merged time grid).

Settings and their per-model defaults (fixed, or derived from the model's own parameters)
live in circuitsim.characterize.settings; every protocol programs its own start states
(`polarity`), so a model's x0 does not matter here.

Laws the models do not have are applied here, at protocol level, and recorded in the
provenance (`LAWS`):
- temperature: a model with its own temperature (device.temperature_param, e.g. the
  Stanford-PKU ambient t0) gets that parameter set to T and nothing else; any other model's
  rate parameters (device.rate_params) scale with an Arrhenius factor
  exp(−Ea/kB·(1/T − 1/T_ref)); levels (ron, roff, ...) do not change. Never both.
- retention: at rest the normalized state relaxes towards x_rest as a power law,
  x(t) = x_rest + (x_p − x_rest)·(1 + t/τ)^(−ν), τ = τ0·exp(Ea/kB·(1/T − 1/T_ref));
  each relaxed state is read in the simulator at the rest temperature (the temperature
  law above). Also for Stanford-PKU: its own gap equation cannot relax at rest (its drive
  sinh(γ·a0/tox·qV/kT) is zero at V = 0, and below f_min·tox/γ, e.g. at the 0.1 V read, the
  field gate switches it off), so followed as it is it would retain for ever at any
  temperature. Its retention uses the law with the model's own ea as Ea and its own t0 as the
  rest temperature (characterize_settings.DERIVED).
- endurance: after n cycles the ON/OFF levels close about their middle in ln R,
  ln(R_off/R_on)(n) = ln(R_off/R_on)·(1 + n/n_c)^(−κ), on the level parameters (ron/roff, or
  the Stanford-PKU gap bounds, ln R ∝ g; Yakopcic has none: refused); at each checkpoint a
  degraded device is SET, read, RESET and read in the simulator.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuitsim import __version__
from circuitsim.characterize import extract
from circuitsim.characterize.settings import Settings, default_settings, make_device, polarity, switching_time_s
from circuitsim.design import Crossbar
from circuitsim.devices.access import NmosAccess
from circuitsim.devices.memristors import StateDevice
from circuitsim.devices.selectors import CurrentLimiter
from circuitsim.transient import Drive, array_transient
from circuitsim.validate import spice_name

KB_EV_PER_K = 8.617333262e-5  # Boltzmann constant [eV/K]
EDGE_FRACTION = 0.02  # pulse edges are this fraction of the pulse width
LAWS = {
    "temperature": "rate parameters × exp(−Ea/kB·(1/T − 1/T_ref)); level parameters unchanged",
    "temperature_own": "the model's own temperature parameter {param} set to T; no protocol scaling",
    "retention": "x(t) = x_rest + (x_p − x_rest)·(1 + t/τ)^(−ν), τ = τ0·exp(Ea/kB·(1/T − 1/T_ref))",
    "endurance": "ln(R_off/R_on)(n) = ln(R_off/R_on)·(1 + n/n_c)^(−κ) about its middle: ron/roff in log "
                 "(sqrt(ron·roff) kept), gap bounds g_min/g_max linearly (ln R ∝ g)",
}


# ---- drives and runs -------------------------------------------------------------------

@dataclass(frozen=True)
class Stimulus:
    """One device's PWL voltage (time_s, volts) and the flat tops of its pulses:
    flats[k] = (start, end) [s]; reads marks which pulses are reads."""

    time_s: np.ndarray
    volts: np.ndarray
    flats: tuple[tuple[float, float], ...] = ()
    reads: tuple[bool, ...] = ()

    @property
    def read_times_s(self) -> np.ndarray:
        return np.array([0.5 * (a + b) for (a, b), r in zip(self.flats, self.reads) if r])


def pulse_sequence(pulses: list[tuple[float, float]], read_v: float, read_width_s: float,
                   read_after: bool = True, read_first: bool = True, edge_s: float | None = None) -> Stimulus:
    """Trapezoidal pulses [(volts, width_s)], each followed by a read pulse (read_v for
    read_width_s) when read_after; a read before the first when read_first. Every edge (and
    the rest after each pulse) lasts edge_s, by default EDGE_FRACTION of the shortest width."""
    seq = [(read_v, read_width_s, True)] if read_first else []
    for v, w in pulses:
        seq.append((v, w, False))
        if read_after:
            seq.append((read_v, read_width_s, True))
    t, volts, flats, reads, now = [0.0], [0.0], [], [], 0.0
    edge = EDGE_FRACTION * min(w for _, w, _ in seq) if edge_s is None else edge_s
    for v, w, is_read in seq:
        t += [now + edge, now + 2 * edge, now + 2 * edge + w, now + 3 * edge + w, now + 4 * edge + w]
        volts += [0.0, v, v, 0.0, 0.0]
        flats.append((now + 2 * edge, now + 2 * edge + w))
        reads.append(is_read)
        now += 4 * edge + w
    return Stimulus(np.array(t), np.array(volts), tuple(flats), tuple(reads))


def triangle(peak_v: float, period_s: float, cycles: int, first_sign: float = 1.0) -> Stimulus:
    """`cycles` triangles 0 → first_sign·peak → 0 → −first_sign·peak → 0."""
    shape = first_sign * peak_v * np.array([0.0, 1.0, 0.0, -1.0])
    t = np.arange(4 * cycles + 1) * period_s / 4
    return Stimulus(t, np.append(np.tile(shape, cycles), 0.0))


@dataclass(frozen=True, eq=False)
class Waves:
    """Waveforms of devices run side by side: time_s (T,), voltage_v (T, n) applied to each cell
    (the source's voltage: across the device plus its compliance element, if any), current_a,
    state (T, n)."""

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    state: np.ndarray
    provenance: dict


SMU_RANGE_A = 1.0  # [A] an SMU's largest range: the RESET side's limit when no reset compliance is set


def saturation_gate_v(current_a: float, transistor: NmosAccess) -> float:
    """Gate voltage [V] at which the access transistor saturates at current_a (λ aside):
    I = kp/2·(w/l)·(V_g − vto)²."""
    return transistor.vto + float(np.sqrt(2.0 * current_a / (transistor.kp * transistor.w / transistor.l)))


def access(device: StateDevice, s: Settings | None) -> dict:
    """Crossbar keywords of the settings' current compliance: an SMU limit (a CurrentLimiter in
    series: compliance_a in the SET polarity, reset_compliance_a or SMU_RANGE_A in the other) or
    a 1T1R access transistor at gate_v; {} for none."""
    if s is None or (s.compliance_a <= 0 and s.gate_v <= 0):
        return {}
    if s.gate_v > 0:
        return {"transistor": NmosAccess(v_gate_on=s.gate_v)}
    reset = s.reset_compliance_a or SMU_RANGE_A
    set_sign = polarity(device, s).set_sign
    return {"selector": CurrentLimiter(*((s.compliance_a, reset) if set_sign > 0 else (reset, s.compliance_a)))}


def _gate_waveforms(volts: np.ndarray, set_sign: float, by_rows: bool, s: Settings) -> np.ndarray:
    """Gate voltages of a 1T1R run: s.gate_v, and s.reset_gate_v while a cell is driven in the
    RESET polarity (as a lab opens the transistor for RESET); with one row for all cells (by_rows
    False) only while no cell on it is being SET."""
    resetting, setting = volts * set_sign < 0, volts * set_sign > 0
    if by_rows:
        return np.where(resetting, s.reset_gate_v, s.gate_v)
    return np.where(resetting.any(axis=1) & ~setting.any(axis=1), s.reset_gate_v, s.gate_v)[:, None]


def run(devices: list[StateDevice], stimuli: list[Stimulus], engine: str, max_step_s: float,
        s: Settings | None = None) -> Waves:
    """Run each device with its own stimulus in one transient (see the module docstring), behind
    the settings' compliance (`access`). With an access transistor and a model that SETs at
    positive voltage, the devices sit on the rows of an N×1 array instead (row j driven with V_j,
    the column at 0 V), so the transistor's source is the grounded side during SET, as in a lab;
    gates follow _gate_waveforms."""
    grid = np.unique(np.concatenate([st.time_s for st in stimuli]))
    if engine == "numpy":  # the twin steps at most one PWL segment: split them (same waveform) to ngspice's cap
        grid = _split_segments(grid, max_step_s)
    volts = np.stack([np.interp(grid, st.time_s, st.volts, right=0.0) for st in stimuli], axis=1)
    cell = access(devices[0], s)
    set_sign = polarity(devices[0], s).set_sign if cell else 1.0
    by_rows = "transistor" in cell and set_sign > 0
    n = len(devices)
    zeros = np.zeros((len(grid), 1))
    gates = _gate_waveforms(volts, set_sign, by_rows, s) if "transistor" in cell else None
    drive = Drive(grid, volts, zeros, gates) if by_rows else Drive(grid, zeros, -volts, gates)
    extra = [st.read_times_s for st in stimuli if st.reads] + [f for st in stimuli for f in np.ravel(st.flats)]
    t_eval = np.union1d(np.linspace(0.0, grid[-1], 2001), np.concatenate([np.ravel(e) for e in extra])
                        if extra else [])
    shape = (n, 1) if by_rows else (1, n)
    cells = np.empty(shape, dtype=object)
    cells.reshape(-1)[:] = devices
    res = array_transient(Crossbar(conductance=np.ones(shape), **cell), cells, drive, engine=engine,
                          max_step_s=min(max_step_s, grid[-1]), t_eval=t_eval if engine == "numpy" else None)
    flat = res.time_s.shape + (n,)
    return Waves(res.time_s, res.cell_voltages.reshape(flat), res.cell_currents.reshape(flat), res.state.reshape(flat),
                 {**res.provenance, "access": {k: {"type": type(v).__name__, **vars(v)} for k, v in cell.items()}})


def _split_segments(time_s: np.ndarray, longest_s: float) -> np.ndarray:
    """time_s with every segment longer than longest_s split evenly (no sliver segments)."""
    pieces = np.maximum(np.ceil(np.diff(time_s) / longest_s).astype(int), 1)
    inner = [np.linspace(a, b, n, endpoint=False) for a, b, n in zip(time_s[:-1], time_s[1:], pieces)]
    return np.append(np.concatenate(inner), time_s[-1])


def _step(shortest_s: float) -> float:
    """ngspice's largest step: 1/50 of the shortest flat top."""
    return shortest_s / 50


def _runinfo(waves: Waves) -> dict:
    p = waves.provenance
    return {k: p[k] for k in ("ngspice_version", "netlist_sha256", "rhs_evaluations", "wall_time_s") if k in p}


# ---- protocols -------------------------------------------------------------------------

def _loop_figure_arrays(waves: Waves, s: Settings, t_start_s: float) -> dict[str, np.ndarray]:
    """LoopFigures of every device over the loop that starts at t_start_s, as arrays (n,)."""
    last = waves.time_s >= t_start_s
    per_device = [extract.loop_figures(waves.voltage_v[last, k], waves.current_a[last, k], s.read_v,
                                       s.switch_fraction).as_dict() for k in range(waves.voltage_v.shape[1])]
    return {name: np.array([f[name] for f in per_device]) for name in per_device[0]}


def loop_start(device: StateDevice, s: Settings) -> StateDevice:
    """The device in the programmed state that the loop's first (positive) half switches away
    from, so both halves cross the whole window (a charge-controlled model such as Joglekar's
    returns to its start state after a zero-mean loop, whatever state that is)."""
    pol = polarity(device, s)
    return device.with_state(pol.x_hrs if pol.set_sign > 0 else pol.x_lrs)


def dc_loop(device: StateDevice, s: Settings, engine: str = "spice"):
    """Triangular DC sweep from loop_start, s.loop_cycles cycles: V_set, V_reset, R_on, R_off,
    on/off of the last."""
    waves = run([loop_start(device, s)], [triangle(s.sweep_v, s.sweep_period_s, s.loop_cycles)], engine,
                s.sweep_period_s / 2000, s)
    figures = {k: float(v[0]) for k, v in
               _loop_figure_arrays(waves, s, (s.loop_cycles - 1) * s.sweep_period_s).items()}
    return figures, _single_waves(waves), [_runinfo(waves)]


def _single_waves(waves: Waves, k: int = 0) -> dict[str, np.ndarray]:
    return {"time_s": waves.time_s, "voltage_v": waves.voltage_v[:, k], "current_a": waves.current_a[:, k],
            "state": waves.state[:, k]}


def pulse_response(device: StateDevice, s: Settings, engine: str = "spice"):
    """Single SET pulses from HRS (s.pulse_set_v) and RESET pulses from LRS (s.pulse_reset_v),
    each width of s.pulse_widths_s, framed by reads: R after each pulse, and the switching
    time vs amplitude (from the longest pulses)."""
    pol = polarity(device, s)
    widths = np.array(s.pulse_widths_s)
    plan = [(pol.set_sign * a, w, pol.x_hrs) for a in s.pulse_set_v for w in widths]
    plan += [(-pol.set_sign * a, w, pol.x_lrs) for a in s.pulse_reset_v for w in widths]
    shortest = min(widths.min(), s.read_width_s)  # one edge for all: switching times are comparable
    stimuli = [pulse_sequence([(v, w)], s.read_v, s.read_width_s, edge_s=EDGE_FRACTION * shortest)
               for v, w, _ in plan]
    waves = run([device.with_state(x0) for _, _, x0 in plan], stimuli, engine, _step(shortest), s)
    reads = np.array([extract.read_resistances(waves.time_s, waves.voltage_v[:, k], waves.current_a[:, k],
                                               stim.read_times_s) for k, stim in enumerate(stimuli)])
    n_set = len(s.pulse_set_v) * len(widths)
    r_hrs, r_lrs = reads[0, 0], reads[n_set, 0]  # where the SET and the RESET pulses start

    def switching(k, g_from, g_to):
        t0, t1 = stimuli[k].flats[1]
        return extract.switching_time(waves.time_s, waves.voltage_v[:, k], waves.current_a[:, k], t0, t1,
                                      g_from, g_to, s.switch_fraction)

    longest = np.arange(len(widths) - 1, len(plan), len(widths))
    t_switch = np.array([switching(k, 1 / r_hrs, 1 / r_lrs) if k < n_set else switching(k, 1 / r_lrs, 1 / r_hrs)
                         for k in longest])
    n_set_amps = len(s.pulse_set_v)
    figures = {"set_v": np.array(s.pulse_set_v), "reset_v": np.array(s.pulse_reset_v), "widths_s": widths,
               "r_after_set_ohm": reads[:n_set, 1].reshape(n_set_amps, -1),
               "r_after_reset_ohm": reads[n_set:, 1].reshape(len(s.pulse_reset_v), -1),
               "r_hrs_start_ohm": float(r_hrs), "r_lrs_start_ohm": float(r_lrs),
               "t_switch_set_s": t_switch[:n_set_amps], "t_switch_reset_s": t_switch[n_set_amps:],
               "set_sign": pol.set_sign}
    return figures, _all_waves(waves), [_runinfo(waves)]


def _all_waves(waves: Waves) -> dict[str, np.ndarray]:
    return {"time_s": waves.time_s, "voltage_v": waves.voltage_v, "current_a": waves.current_a, "state": waves.state}


def potentiation_depression(device: StateDevice, s: Settings, engine: str = "spice"):
    """s.train_pulses identical SET pulses from HRS, then as many identical RESET pulses, a
    read after each: conductance levels and the hardware-aware-training figures."""
    pol = polarity(device, s)
    pulses = ([(pol.set_sign * s.train_set_v, s.train_width_s)] * s.train_pulses
              + [(-pol.set_sign * s.train_reset_v, s.train_width_s)] * s.train_pulses)
    stim = pulse_sequence(pulses, s.read_v, s.read_width_s)
    waves = run([device.with_state(pol.x_hrs)], [stim], engine, _step(min(s.train_width_s, s.read_width_s)), s)
    g = 1.0 / extract.read_resistances(waves.time_s, waves.voltage_v[:, 0], waves.current_a[:, 0],
                                       stim.read_times_s)
    n = s.train_pulses
    figures = {"conductance_s": g, **extract.weight_update_figures(g[:n + 1], g[n:])}
    return figures, _single_waves(waves), [_runinfo(waves)]


def variability(device: StateDevice, s: Settings, engine: str = "spice"):
    """s.n_devices devices (levels spread by sigma_d2d) × s.n_cycles loops (rates spread by
    sigma_c2c per cycle, state carried over), seeded: per-loop figures and their distributions."""
    from circuitsim.variability import cycle_to_cycle, device_to_device

    start = loop_start(device, s)
    fleet = device_to_device(start, (s.n_devices,), s.sigma_d2d, seed=s.seed)
    cycles = [cycle_to_cycle(d, s.n_cycles, s.sigma_c2c, seed=(s.seed, k)) for k, d in enumerate(fleet)]
    states = [start.x0] * s.n_devices
    per_cycle, waveforms, runs = [], {}, []
    for c in range(s.n_cycles):
        devices = [cycles[k][c].with_state(float(np.clip(states[k], 0, 1))) for k in range(s.n_devices)]
        stim = triangle(s.sweep_v, s.sweep_period_s, 1)
        waves = run(devices, [stim] * s.n_devices, engine, s.sweep_period_s / 2000, s)
        per_cycle.append(_loop_figure_arrays(waves, s, 0.0))
        states = waves.state[-1]
        waveforms[f"cycle_{c}"] = _all_waves(waves)
        runs.append(_runinfo(waves))
    figures = {}
    for name in ("v_set_v", "v_reset_v", "r_on_ohm", "r_off_ohm", "on_off_ratio"):
        table = np.stack([c[name] for c in per_cycle], axis=1)  # (devices, cycles)
        figures[name] = table
        figures[f"{name}_distribution"] = extract.distribution(table)
        figures[f"{name}_d2d"] = extract.distribution(table.mean(axis=1))
    for name in device.bound_params:
        figures[f"device_{name}"] = np.array([getattr(d, name) for d in fleet])
    return figures, waveforms, runs


def read_repeat(device: StateDevice, s: Settings, engine: str = "spice"):
    """s.n_reads reads at s.read_v in LRS and in HRS: read disturb (R trend over the reads,
    from the simulator) and read noise (seeded 1/f current noise of relative PSD q/f added to
    each read, circuitsim.variability.flicker_noise)."""
    from circuitsim.variability import flicker_noise

    pol = polarity(device, s)
    stim = pulse_sequence([(s.read_v, s.read_width_s)] * (s.n_reads - 1), s.read_v, s.read_width_s, read_after=False)
    stim = dataclasses.replace(stim, reads=(True,) * s.n_reads)
    waves = run([device.with_state(pol.x_lrs), device.with_state(pol.x_hrs)], [stim, stim], engine,
                _step(s.read_width_s), s)
    period_s = stim.flats[1][0] - stim.flats[0][0]
    figures = {}
    for k, (name, q) in enumerate((("lrs", s.noise_q_lrs), ("hrs", s.noise_q_hrs))):
        r_clean = extract.read_resistances(waves.time_s, waves.voltage_v[:, k], waves.current_a[:, k],
                                           stim.read_times_s)
        gain = flicker_noise(1.0, s.n_reads, period_s, q, seed=(s.seed, k))
        r_read = r_clean / gain
        disturb, noise = extract.trend_and_noise(r_read)
        figures.update({f"r_{name}_reads_ohm": r_read, f"r_{name}_mean_ohm": float(r_read.mean()),
                        f"disturb_{name}": disturb, f"noise_{name}": noise})
    return figures, _all_waves(waves), [_runinfo(waves)]


def arrhenius(temperature_k: float, s: Settings) -> float:
    """exp(−Ea/kB·(1/T − 1/T_ref)): how much faster a thermally activated process runs at T."""
    return float(np.exp(-s.ea_ev / KB_EV_PER_K * (1.0 / temperature_k - 1.0 / s.t_ref_k)))


def at_temperature(device: StateDevice, temperature_k: float, s: Settings) -> StateDevice:
    """The device at temperature_k: its own temperature parameter set to it if it has one
    (LAWS['temperature_own']), else the protocol's law (LAWS['temperature']), never both."""
    if device.temperature_param:
        return dataclasses.replace(device, **{device.temperature_param: temperature_k})
    if not device.rate_params:
        raise ValueError(f"{type(device).__name__} declares no rate parameters, so it has no temperature law")
    factor = arrhenius(temperature_k, s)
    return dataclasses.replace(device, **{p: getattr(device, p) * factor for p in device.rate_params})


def temperature(device: StateDevice, s: Settings, engine: str = "spice"):
    """The DC loop (from loop_start) at each of s.temperatures_k (side by side in one run)."""
    temps = np.array(s.temperatures_k)
    devices = [at_temperature(loop_start(device, s), t, s) for t in temps]
    stim = triangle(s.sweep_v, s.sweep_period_s, s.loop_cycles)
    waves = run(devices, [stim] * len(devices), engine, s.sweep_period_s / 2000, s)
    figures = {"temperatures_k": temps, **_loop_figure_arrays(waves, s, (s.loop_cycles - 1) * s.sweep_period_s)}
    if not device.temperature_param:
        figures["rate_factor"] = np.array([arrhenius(t, s) for t in temps])
    return figures, _all_waves(waves), [_runinfo(waves)]


def relaxed_state(x_programmed: float, t_s, s: Settings):
    """The state after resting t_s [s] at s.retention_temperature_k (LAWS['retention'])."""
    tau = s.retention_tau_s / arrhenius(s.retention_temperature_k, s)
    return s.retention_x_rest + (x_programmed - s.retention_x_rest) * (1.0 + np.asarray(t_s) / tau) ** -s.retention_nu


def _read_states(device: StateDevice, states, s: Settings, engine: str) -> tuple[np.ndarray, Waves]:
    """R [Ω] of the device at each state, one read each, side by side in one run."""
    stim = pulse_sequence([], s.read_v, s.read_width_s)
    waves = run([device.with_state(float(x)) for x in states], [stim] * len(states), engine,
                _step(s.read_width_s), s)
    r = np.array([extract.read_resistances(waves.time_s, waves.voltage_v[:, k], waves.current_a[:, k],
                                           stim.read_times_s)[0] for k in range(len(states))])
    return r, waves


def retention(device: StateDevice, s: Settings, engine: str = "spice"):
    """LRS and HRS after resting s.retention_times_s under the retention law, each read in
    the simulator at the rest temperature: R vs time, window vs time and the retention time
    (window = criterion)."""
    pol = polarity(device, s)
    times = np.array(s.retention_times_s)
    x_lrs, x_hrs = relaxed_state(pol.x_lrs, times, s), relaxed_state(pol.x_hrs, times, s)
    at_rest = at_temperature(device, s.retention_temperature_k, s)
    r, waves = _read_states(at_rest, np.concatenate([x_lrs, x_hrs]), s, engine)
    r_lrs, r_hrs = r[:len(times)], r[len(times):]
    window = r_hrs / r_lrs
    figures = {"times_s": times, "r_lrs_ohm": r_lrs, "r_hrs_ohm": r_hrs, "window": window,
               "state_lrs": x_lrs, "state_hrs": x_hrs,
               "retention_time_s": extract.crossing_in_log(times, window, s.window_criterion)}
    return figures, _all_waves(waves), [_runinfo(waves)]


# Level parameters the endurance law can close, and how each maps to ln R and back: ron/roff
# in log; a gap linearly (R ∝ exp(g/g0), so ln R is linear in g).
LEVEL_SCALES = {("ron", "roff"): (np.log, np.exp), ("g_min", "g_max"): (float, float)}


def worn(device: StateDevice, cycles: float, s: Settings) -> StateDevice:
    """The device after `cycles` switching cycles under the endurance law (LAWS['endurance'])."""
    if device.bound_params not in LEVEL_SCALES:
        raise ValueError(f"the endurance law closes ON/OFF level parameters {list(LEVEL_SCALES)}; "
                         f"{type(device).__name__} has {device.bound_params}, which scale both states alike, "
                         "so it does not apply")
    to_log, from_log = LEVEL_SCALES[device.bound_params]
    low, high = (to_log(getattr(device, name)) for name in device.bound_params)
    half = 0.5 * (high - low) * (1.0 + cycles / s.endurance_onset_cycles) ** -s.endurance_kappa
    middle = 0.5 * (low + high)
    return dataclasses.replace(device, **dict(zip(device.bound_params, (from_log(middle - half),
                                                                        from_log(middle + half)))))


def locks_at_bounds(device: StateDevice, s: Settings) -> bool:
    """True if the state cannot leave a bound once there (the rate away from it is zero, as in
    Joglekar's window). Exact arithmetic only approaches a bound, floating point reaches it, so
    such a model must be driven across its window exactly, never overdriven."""
    pol = polarity(device, s)
    on_end = round(pol.x_lrs)
    return bool(device.dxdt(-pol.set_sign * s.sweep_v, on_end) == 0
                or device.dxdt(pol.set_sign * s.sweep_v, 1.0 - on_end) == 0)


def endurance(device: StateDevice, s: Settings, engine: str = "spice"):
    """At each checkpoint of s.endurance_cycles the worn device, programmed to LRS, is RESET,
    read, SET and read in the simulator with the strongest pulses of the pulse protocol: R_on,
    R_off and the window vs cycles, and the cycles to failure. The pulses last the longest
    width, or, for a model that locks_at_bounds, exactly as long as that worn device takes to
    cross its window (program and verify: a fixed pulse overdrives a worn device into a lock)."""
    pol = polarity(device, s)
    n = np.array(s.endurance_cycles)
    devices = [worn(device, c, s) for c in n]
    v_reset, v_set = -pol.set_sign * max(s.pulse_reset_v), pol.set_sign * max(s.pulse_set_v)
    if locks_at_bounds(device, s):
        widths = [(switching_time_s(d, v_reset, pol.x_lrs, pol.x_hrs), switching_time_s(d, v_set, pol.x_hrs, pol.x_lrs))
                  for d in devices]
    else:
        widths = [(max(s.pulse_widths_s),) * 2] * len(n)
    stimuli = [pulse_sequence([(v_reset, w_reset), (v_set, w_set)], s.read_v, s.read_width_s, read_first=False)
               for w_reset, w_set in widths]
    waves = run([d.with_state(pol.x_lrs) for d in devices], stimuli, engine,
                _step(min(s.read_width_s, np.min(widths))), s)
    reads = np.array([extract.read_resistances(waves.time_s, waves.voltage_v[:, k], waves.current_a[:, k],
                                               stim.read_times_s) for k, stim in enumerate(stimuli)])
    r_off, r_on = reads[:, 0], reads[:, 1]
    figures = {"cycles": n, "r_on_ohm": r_on, "r_off_ohm": r_off, "window": r_off / r_on,
               "cycles_to_failure": extract.crossing_in_log(n, r_off / r_on, s.window_criterion)}
    return figures, _all_waves(waves), [_runinfo(waves)]


def multilevel(device: StateDevice, s: Settings, engine: str = "spice"):
    """Multi-level cell by compliance current: for each level of s.mlc_compliance_a, a device
    RESET from its programmed HRS goes s.mlc_cycles times through a SET pulse (the pulse
    protocol's strongest, longest) under that compliance, a read, a RESET pulse and a read.
    The compliance is the SMU's, or with s.gate_v > 0 the access transistor's, its gate at
    saturation_gate_v(level) (RESETs at s.reset_gate_v). Figures: R after each SET (levels,
    cycles), the peak SET current per level, monotone (R falls as the level rises, in every
    cycle) and repeatability (largest max/min − 1 of a level over its cycles); waveforms per level."""
    pol = polarity(device, s)
    levels = np.array(s.mlc_compliance_a)
    v_set, width = pol.set_sign * max(s.pulse_set_v), max(s.pulse_widths_s)
    reset = (-pol.set_sign * max(s.pulse_reset_v), width)
    stim = pulse_sequence([reset] + [(v_set, width), reset] * s.mlc_cycles, s.read_v, s.read_width_s,
                          read_first=False)  # a first RESET: every SET starts from the same HRS
    r_set, r_reset, peaks, gates, runs, waveforms = [], [], [], [], [], {}
    for k, level in enumerate(levels):
        gate = saturation_gate_v(level, NmosAccess()) if s.gate_v > 0 else float("nan")
        limited = dataclasses.replace(s, gate_v=gate) if s.gate_v > 0 else dataclasses.replace(s, compliance_a=level)
        waves = run([device.with_state(pol.x_hrs)], [stim], engine, _step(min(width, s.read_width_s)), limited)
        reads = extract.read_resistances(waves.time_s, waves.voltage_v[:, 0], waves.current_a[:, 0],
                                         stim.read_times_s)
        r_set.append(reads[1::2])
        r_reset.append(reads[2::2])
        setting = np.sign(waves.voltage_v[:, 0]) == pol.set_sign
        peaks.append(float(np.max(np.abs(waves.current_a[setting, 0]))))
        gates.append(gate)
        runs.append(_runinfo(waves))
        waveforms[f"level_{k}"] = _all_waves(waves)
    r_set = np.array(r_set)
    figures = {"compliance_a": levels, "r_levels_ohm": r_set, "r_reset_ohm": np.array(r_reset),
               "peak_set_current_a": np.array(peaks), "gate_v": np.array(gates),
               "monotone": bool(np.all(np.diff(r_set, axis=0) < 0)),
               "repeatability": float(np.max(r_set.max(axis=1) / r_set.min(axis=1) - 1.0))}
    return figures, waveforms, runs


PROTOCOLS = {"loop": dc_loop, "pulse": pulse_response, "ptdp": potentiation_depression,
             "variability": variability, "read": read_repeat, "temperature": temperature,
             "retention": retention, "endurance": endurance, "mlc": multilevel}
PROTOCOL_LAWS = {"temperature": ("temperature",), "retention": ("retention", "temperature"),
                 "endurance": ("endurance",)}


def laws(protocol: str, device: StateDevice) -> dict[str, str]:
    """The laws a protocol applied to the device, as written into the provenance."""
    out = {k: LAWS[k] for k in PROTOCOL_LAWS.get(protocol, ())}
    if "temperature" in out and device.temperature_param:
        out["temperature"] = LAWS["temperature_own"].format(param=device.temperature_param)
    return out


@dataclass(frozen=True, eq=False)
class Characterization:
    """One protocol's dataset: what was run (protocol, model, engine, params, settings), the
    extracted figures, the waveforms, and the provenance (versions, netlists, laws, time)."""

    protocol: str
    model: str
    engine: str
    params: dict
    settings: dict
    figures: dict
    waveforms: dict
    provenance: dict = field(default_factory=dict)

    def inputs(self) -> dict:
        return _inputs(self.protocol, self.model, self.engine, self.params, self.settings)


def _inputs(protocol: str, model: str, engine: str, params: dict, settings: dict) -> dict:
    return {"protocol": protocol, "model": model, "engine": engine, "params": params, "settings": settings}


def characterize(protocol: str, model: str, params: dict | None = None, *, engine: str = "spice",
                 settings: Settings | None = None, **overrides) -> Characterization:
    """Run one protocol (a key of PROTOCOLS) on a model (a key of MEMRISTORS) with some of
    its parameters changed; settings default to default_settings(model, params, **overrides)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    if engine not in ("spice", "numpy"):
        raise ValueError(f"engine must be 'spice' or 'numpy', got {engine!r}")
    device = make_device(model, params)
    s = settings if settings is not None else default_settings(model, params, **overrides)
    start = time.perf_counter()
    figures, waveforms, runs = PROTOCOLS[protocol](device, s, engine)
    provenance = {"circuitsim_version": __version__, "engine": engine, "wall_time_s": time.perf_counter() - start,
                  "seed": s.seed, "device_type": type(device).__name__,
                  "netlist_sha256": [r["netlist_sha256"] for r in runs if "netlist_sha256" in r],
                  "ngspice_version": next((r["ngspice_version"] for r in runs if "ngspice_version" in r), ""),
                  "laws": laws(protocol, device)}
    return Characterization(protocol, model, engine, device.spice_params(), s.as_dict(), figures, waveforms,
                            provenance)


def save(result: Characterization, path) -> str:
    """Append the dataset to the HDF5 store at path (circuitsim.store) and return its key."""
    from circuitsim.store import Store

    with Store.open(path, "a") as store:
        return store.append(None, result.inputs(), {"figures": result.figures, "waveforms": result.waveforms},
                            result.provenance)


def parse_assignments(items: list[str] | None, what: str) -> dict[str, float | tuple[float, ...]]:
    """{name: number or tuple} from command-line 'name=value' or 'name=v1,v2,...' items.
    Names must be identifiers and values finite numbers; anything else is refused here."""
    out = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"{what} {item!r} must look like name=value")
        spice_name(name)
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"{what} {name}: {text!r} is not a number or a comma-separated list of numbers") from None
        if not all(np.isfinite(values)):
            raise ValueError(f"{what} {name}: values must be finite")
        out[name] = values if len(values) > 1 else values[0]
    return out


def characterize_to_store(protocol: str, model: str, params: dict, overrides: dict, out, *,
                          engine: str = "spice", plot_path=None) -> tuple[str, Characterization | None]:
    """Run a protocol into the HDF5 store `out` unless the same inputs are already stored (then
    nothing runs and None is returned with the key), and write its figure to plot_path ("{key}" in it
    becomes the dataset's key, so runs under other conditions never overwrite each other's figure)."""
    from circuitsim.store import Store, point_key

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    device, s = make_device(model, params), default_settings(model, params, **overrides)
    key = point_key(_inputs(protocol, model, engine, device.spice_params(), s.as_dict()))
    if Path(out).exists():  # resume; a missing file is created only once there is a result to write
        with Store.open(out, "r") as store:
            if store.status(key) == "ok":
                return key, None
    result = characterize(protocol, model, params, engine=engine, settings=s)
    save(result, out)
    if plot_path is not None:
        from circuitsim.characterize.plots import plot
        from circuitsim.plots import save as save_figure

        save_figure(plot(result), str(plot_path).replace("{key}", key[:8]))
    return key, result
