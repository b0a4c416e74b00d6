"""Settings of the characterization protocols (circuitsim.characterize.protocols) and their per-model defaults.

A model's defaults come in three layers, later ones winning: the shared `Settings` defaults,
the model's fixed scales (`MODEL_SCALES`: mostly voltages, and the times of models whose
published stimuli work as they are), and the scales derived from the model's own parameters
and equations (`DERIVED`), computed on the device actually run (so `--param` changes move
them). Settings given by the user override all three and are never re-derived. The result is
one `Settings`, which the dataset stores as the settings actually used.

Derived time scales rest on one quantity, the time a constant voltage takes to carry the
state across the window, ∫ dx / ẋ(V, x) with the model's own rate ẋ (`switching_time_s`):
the device sees the drive exactly (the protocols run it without series resistance), so this
is what the simulator will do, up to the pulse edges.

Retention defaults (τ0, ν, x_rest of protocols.LAWS['retention']; programming.drift relaxes
programmed arrays with the same ones): aihwkit's ReRamCMONoiseModel (IBM/aihwkit,
src/aihwkit/inference/noise/reram.py; CMO/HfOx filamentary ReRAM, Falcone et al.) fits the mean
conductance relaxation as level-independent ΔG = −0.0890 µS·ln(t/1 s), towards lower
conductance; over the window aihwkit's own CMO examples use (9.0–88.19 µS) that is −1.12e-3 of
the window per e-fold of time. For t ≫ τ0 the power law gives dx/d ln t = −ν·(x_p − x_rest);
with x_rest at the model's high-resistance end (derived from the device) and τ0 = 1 s (the
fit's time origin, at room temperature = T_ref) a mid-window state (|x_p − x_rest| = 0.5)
matches it for ν = 2.25e-3. That is 2.2 % of the window lost from 1 s to 10 years at 300 K.
The state-to-conductance map is each model's own, so this is the CMO drift in normalized state,
not in µS. No model has a retention measurement of its own; all share this closest sourced law.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

from circuitsim.devices.memristors import MEMRISTORS, StateDevice
from circuitsim.validate import check_physical, finite_array, integer, spice_name

START_MARGIN = 0.05  # programmed start states sit this far inside [0, 1] (or R this close to a level)
READ_FLUX_FRACTION = 1e-3  # linear ion drift: one read carries this share of the window's switching flux
STALL_RATIO = 1e-12  # a rate this far below its fastest on a path is a closed threshold gate, not a slow switch
PULSE_WIDTHS = 3  # widths of the pulse protocol when they are derived
OFF_WHEN_ZERO = ("sigma_d2d", "sigma_c2c", "noise_q_lrs", "noise_q_hrs", "compliance_a", "reset_compliance_a",
                 "gate_v", "retention_x_rest")  # float settings that may be 0
# Upper bounds that keep a protocol's run to minutes and its memory to megabytes: counts, values
# per list, and the span of the flat tops one transient resolves (it steps at 1/50 of the
# shortest, so the span sets its steps per pulse; the derived defaults span at most ~750).
MAX_COUNTS = {"loop_cycles": 100, "train_pulses": 10_000, "n_devices": 1_000, "n_cycles": 1_000,
              "n_reads": 100_000}
MAX_VALUES = 1_000
MAX_TIME_SPAN = 1e4


@dataclass(frozen=True)
class Settings:
    """Protocol settings (SI units); defaults per model (see the module docstring).
    Magnitudes: the protocol applies them with the model's own SET/RESET polarity."""

    sweep_v: float = 1.0  # DC loop: peak |V| of the triangle [V]
    sweep_period_s: float = 1e-3  # DC loop: one triangle 0 → +peak → 0 → −peak → 0 [s]
    loop_cycles: int = 2  # DC loop: cycles run; figures come from the last one
    switch_fraction: float = 0.5  # share of the log-conductance change that defines V_set/V_reset, t_switch
    read_v: float = 0.1  # read voltage [V] (between the thresholds of a threshold model)
    read_width_s: float = 1e-6  # flat top of one read pulse [s]
    lrs_margin: float = START_MARGIN  # programmed LRS start state: this far inside [0, 1] from the ON end [-]
    hrs_margin: float = START_MARGIN  # programmed HRS start state: this far from the OFF end [-]
    pulse_set_v: tuple[float, ...] = (0.5, 1.0)  # pulse protocol: SET magnitudes [V]
    pulse_reset_v: tuple[float, ...] = (0.5, 1.0)  # pulse protocol: RESET magnitudes [V]
    pulse_widths_s: tuple[float, ...] = (1e-6, 1e-5)  # pulse protocol: flat-top widths [s]
    train_set_v: float = 0.5  # potentiation pulse magnitude [V]
    train_reset_v: float = 0.5  # depression pulse magnitude [V]
    train_width_s: float = 1e-6  # potentiation/depression pulse width [s]
    train_pulses: int = 20  # pulses per direction
    n_devices: int = 4  # variability: devices (device-to-device)
    n_cycles: int = 3  # variability: loops per device (cycle-to-cycle)
    sigma_d2d: float = 0.1  # σ of ln(level parameters) between devices
    sigma_c2c: float = 0.1  # σ of ln(rate parameters) between cycles
    seed: int = 0  # variability and read noise
    n_reads: int = 50  # read protocol: reads per state
    noise_q_lrs: float = 1e-6  # read protocol: 1/f relative PSD S_I/I² = q/f [1/Hz·Hz] in LRS
    noise_q_hrs: float = 1e-5  # ... in HRS (larger: HRS is noisier)
    temperatures_k: tuple[float, ...] = (250.0, 300.0, 350.0, 400.0)  # temperature protocol [K]
    t_ref_k: float = 300.0  # temperature at which the model's parameters hold [K]
    ea_ev: float = 0.6  # activation energy of switching and retention [eV]
    retention_times_s: tuple[float, ...] = tuple(np.logspace(0, 8, 17))  # rest times [s]
    retention_tau_s: float = 1.0  # τ0 of the relaxation at t_ref_k [s] (aihwkit's CMO ReRAM fit)
    retention_nu: float = 0.0890 / (88.19 - 9.0) / 0.5  # exponent ν of the relaxation [-] (the same fit)
    retention_x_rest: float = 0.0  # state the relaxation tends to [-] (derived: the model's high-resistance end)
    retention_temperature_k: float = 300.0  # temperature of the rest [K]
    window_criterion: float = 2.0  # retention / endurance fail when R_off/R_on falls to this
    endurance_cycles: tuple[float, ...] = tuple(np.logspace(0, 8, 9))  # checkpoints n [cycles]
    endurance_onset_cycles: float = 1e4  # n_c of the endurance law
    endurance_kappa: float = 0.25  # κ of the endurance law
    compliance_a: float = 0.0  # SMU current compliance in the SET polarity [A], on every protocol; 0: none
    reset_compliance_a: float = 0.0  # SMU compliance in the RESET polarity [A]; 0: the SMU's 1 A range
    gate_v: float = 0.0  # 1T1R: gate voltage [V] of an access transistor in series (sets the SET current); 0: none
    reset_gate_v: float = 3.3  # 1T1R: gate voltage [V] while a cell is driven in the RESET polarity (fully on)
    mlc_compliance_a: tuple[float, ...] = (1e-4, 2e-4, 4e-4)  # MLC protocol: SET compliance levels [A]
    mlc_cycles: int = 3  # MLC protocol: RESET/SET cycles per level (repeatability)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, tuple):
                arr = finite_array(f"settings.{f.name}", value, positive=True).reshape(-1)
                if not 1 <= len(arr) <= MAX_VALUES:
                    raise ValueError(f"settings.{f.name} needs 1 to {MAX_VALUES} values, got {len(arr)}")
                object.__setattr__(self, f.name, tuple(float(v) for v in arr))
            elif isinstance(f.default, int):
                count = integer(f"settings.{f.name}", value, minimum=0 if f.name == "seed" else 1,
                                maximum=MAX_COUNTS.get(f.name))
                object.__setattr__(self, f.name, count)
            else:
                v = float(finite_array(f"settings.{f.name}", value, shape=()))
                if v <= 0 and f.name not in OFF_WHEN_ZERO:
                    raise ValueError(f"settings.{f.name} must be > 0, got {v:g}")
                if v < 0:
                    raise ValueError(f"settings.{f.name} must be >= 0, got {v:g}")
                object.__setattr__(self, f.name, v)
        if not 0 < self.switch_fraction < 1 or not 0 <= self.retention_x_rest <= 1:
            raise ValueError("settings.switch_fraction must be in (0, 1) and retention_x_rest in [0, 1]")
        if not (self.lrs_margin < 0.5 and self.hrs_margin < 0.5):
            raise ValueError("settings.lrs_margin and hrs_margin must be below 0.5 (start states inside [0, 1])")
        if self.train_pulses < 2 or self.n_reads < 3 or self.window_criterion <= 1:
            raise ValueError("settings need train_pulses >= 2, n_reads >= 3 and window_criterion > 1")
        if self.compliance_a > 0 and self.gate_v > 0:
            raise ValueError("settings: an SMU compliance (compliance_a) or a 1T1R access transistor (gate_v), "
                             "not both")
        for f in fields(self):
            if f.name.endswith("_v"):
                check_physical(f"settings.{f.name}", getattr(self, f.name), "V")

    def check_time_span(self) -> None:
        """Refuse flat tops too far apart for one transient (checked on the final settings: the
        derivation passes through mixed ones)."""
        tops = (self.read_width_s, self.train_width_s, *self.pulse_widths_s)
        if max(tops) / min(tops) > MAX_TIME_SPAN:
            raise ValueError("settings read_width_s, train_width_s and pulse_widths_s span "
                             f"{max(tops) / min(tops):.3g}x ({min(tops):g} to {max(tops):g} s); a transient "
                             f"resolves at most {MAX_TIME_SPAN:g}x: bring them closer")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# Fixed scales of each model's switching. VTEAM switches in nanoseconds, Yakopcic's published
# fit in ~0.1 ms, the Stanford-PKU RRAM in ~1-300 ns above its field gate (published ±2 V, 1 µs
# loop; SET 1.4-1.8 V; RESET amplitudes reach past the published 1.3 V, which the f_min gate
# stops short of HRS). The linear ion drift models have no voltage scale (no threshold): their
# voltages are conventional and all their times are derived (DERIVED).
MODEL_SCALES = {
    "vteam": {"sweep_v": 0.5, "sweep_period_s": 1e-4, "read_v": 0.01, "read_width_s": 1e-8,
              "mlc_compliance_a": (5e-4, 1e-3, 2e-3),
              "pulse_set_v": (0.25, 0.3, 0.4), "pulse_reset_v": (0.3, 0.6, 1.5),
              "pulse_widths_s": (1e-9, 1e-8, 1e-7),
              "train_set_v": 0.222, "train_reset_v": 0.5, "train_width_s": 1e-8},
    "yakopcic": {"sweep_v": 1.0, "sweep_period_s": 2e-2, "read_v": 0.1, "read_width_s": 1e-5,
                 "pulse_set_v": (0.5, 0.75, 1.0), "pulse_reset_v": (0.5, 0.75, 1.0),
                 "pulse_widths_s": (1e-4, 1e-3),
                 "train_set_v": 0.5, "train_reset_v": 0.5, "train_width_s": 1e-4},
    "lid_biolek": {"sweep_v": 1.0, "read_v": 0.1, "pulse_set_v": (0.5, 1.0), "pulse_reset_v": (0.5, 1.0),
                   "train_set_v": 1.0},
    "lid_joglekar": {"sweep_v": 1.0, "read_v": 0.1, "pulse_set_v": (0.5, 1.0), "pulse_reset_v": (0.5, 1.0),
                     "train_set_v": 1.0},
    "stanford_pku": {"sweep_v": 2.0, "sweep_period_s": 1e-6, "read_v": 0.1, "read_width_s": 1e-8,
                     "pulse_set_v": (1.4, 1.6, 1.8), "pulse_reset_v": (1.3, 1.4, 1.5), "train_set_v": 1.4},
}


def _model_class(model: str) -> type[StateDevice]:
    if model not in MEMRISTORS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MEMRISTORS)}")
    return MEMRISTORS[model]


def make_device(model: str, params: dict | None = None) -> StateDevice:
    """The model with some parameters changed; names must be the model's parameters and values
    finite numbers (the model validates them), so nothing else can reach a netlist."""
    cls = _model_class(model)
    params = dict(params or {})
    names = {f.name for f in fields(cls)}
    for name in params:
        spice_name(name)
        if name not in names:
            raise ValueError(f"{model} has no parameter {name!r}; its parameters: {sorted(names)}")
    return cls(**{k: float(finite_array(f"{model}.{k}", v, shape=())) for k, v in params.items()})


# ---- polarity and start states ---------------------------------------------------------

@dataclass(frozen=True)
class Polarity:
    """x_lrs, x_hrs: programmed ON and OFF start states [-]; set_sign: sign of the voltage
    that SETs (lowers R)."""

    x_lrs: float
    x_hrs: float
    set_sign: float


def _on_end(device: StateDevice, read_v: float) -> float:
    """The end of x (0 or 1) with the larger read current."""
    return 1.0 if device.current(read_v, 1.0) > device.current(read_v, 0.0) else 0.0


def polarity(device: StateDevice, s: Settings) -> Polarity:
    """Which end of x is ON and which voltage sign moves x towards it; the start states sit
    s.lrs_margin / s.hrs_margin inside the ON / OFF end."""
    on_end = _on_end(device, s.read_v)
    toward_on = np.sign(on_end - 0.5) * device.dxdt(s.sweep_v, 0.5) > 0
    return Polarity(abs(on_end - s.lrs_margin), abs(1.0 - on_end - s.hrs_margin), 1.0 if toward_on else -1.0)


# ---- time scales from the model's own equations ----------------------------------------

def switching_time_s(device: StateDevice, v: float, x_from: float, x_to: float) -> float:
    """Time [s] a constant voltage v takes to move the state from x_from to x_to, ∫ dx / ẋ(v, x);
    inf if the state stops (a rate STALL_RATIO below its fastest on the path: a threshold or
    field gate) or moves the other way on the way."""
    rate = np.sign(x_to - x_from) * device.dxdt(v, np.linspace(x_from, x_to, 401))
    if rate.min() <= STALL_RATIO * rate.max():
        return float("inf")
    return float(quad(lambda x: 1.0 / device.dxdt(v, x), x_from, x_to, limit=200, epsrel=1e-10)[0])


def log_midpoint(device: StateDevice, read_v: float, x_a: float, x_b: float) -> float:
    """The state between x_a and x_b whose read current is half-way between theirs in log
    (where the protocols' switch_fraction = 0.5 places a switch)."""
    def ln_i(x):
        return np.log(abs(device.current(read_v, x)))

    middle = 0.5 * (ln_i(x_a) + ln_i(x_b))
    return float(brentq(lambda x: ln_i(x) - middle, x_a, x_b, xtol=1e-12))


def crossing_time_s(device: StateDevice, s: Settings, kind: str, amplitude: float, to_middle: bool = False) -> float:
    """Time [s] one "SET" (from HRS to LRS) or "RESET" (back) at `amplitude` takes to cross the
    programmed window, or to reach its log-midpoint when to_middle; inf if it cannot."""
    pol = polarity(device, s)
    start, end, sign = ((pol.x_hrs, pol.x_lrs, pol.set_sign) if kind == "SET"
                        else (pol.x_lrs, pol.x_hrs, -pol.set_sign))
    if to_middle:
        end = log_midpoint(device, s.read_v, pol.x_hrs, pol.x_lrs)
    return switching_time_s(device, sign * amplitude, start, end)


# ---- derivation rules: each returns one setting from the device and the settings so far --

def _level_margin(device: StateDevice, s: Settings, at_on_end: bool) -> float:
    """Distance from a bound of the state whose read resistance is within START_MARGIN of the
    resistance at that bound (1 + m times the ON level, 1 − m times the OFF level)."""
    end = _on_end(device, s.read_v) if at_on_end else 1.0 - _on_end(device, s.read_v)
    factor = 1.0 / (1.0 + START_MARGIN) if at_on_end else 1.0 / (1.0 - START_MARGIN)
    target = factor * device.current(s.read_v, end)
    x = brentq(lambda x: device.current(s.read_v, x) - target, end, 0.5, xtol=1e-14)
    return abs(end - x)


def _lrs_margin(device, s):
    return _level_margin(device, s, at_on_end=True)


def _hrs_margin(device, s):
    return _level_margin(device, s, at_on_end=False)


def _window_flux_vs(device: StateDevice, s: Settings) -> float:
    """Linear ion drift is flux-controlled (x depends on ∫V dt only, per polarity): the flux
    [V·s] that carries the state across the window in the slower direction."""
    return s.sweep_v * max(crossing_time_s(device, s, kind, s.sweep_v) for kind in ("SET", "RESET"))


def _drift_sweep_period(device, s):
    """Each half of the loop has carried the window flux when its return branch passes read_v
    (where R_on and R_off are read): peak·P/4 − read_v²·P/(8·peak) = flux."""
    return _window_flux_vs(device, s) / (s.sweep_v / 4 - s.read_v**2 / (8 * s.sweep_v))


def _drift_read_width(device, s):
    return READ_FLUX_FRACTION * _window_flux_vs(device, s) / s.read_v


def _pulse_widths(device, s):
    """From the time the strongest pulse needs to reach the log-midpoint (the faster direction)
    to the time the weakest pulse that can cross the window needs (the slower direction), so
    short pulses switch partly, the longest ones fully, and every switching time is measured."""
    amplitudes = {"SET": s.pulse_set_v, "RESET": s.pulse_reset_v}
    half = min(crossing_time_s(device, s, kind, max(a), to_middle=True) for kind, a in amplitudes.items())
    longest = []
    for kind, kind_amplitudes in amplitudes.items():
        times = [t for t in (crossing_time_s(device, s, kind, a) for a in kind_amplitudes) if np.isfinite(t)]
        if not times:
            raise ValueError(f"no {kind} amplitude in {kind_amplitudes} V moves {type(device).__name__} across "
                             "its window; raise them or give pulse_widths_s")
        longest.append(max(times))
    return tuple(np.geomspace(half, max(longest), PULSE_WIDTHS))


def _train_width(device, s):
    """train_pulses identical SET pulses carry the state from HRS to LRS."""
    t = crossing_time_s(device, s, "SET", s.train_set_v)
    if not np.isfinite(t):
        raise ValueError(f"a SET at {s.train_set_v:g} V does not move {type(device).__name__} across its window; "
                         "choose another train_set_v")
    return t / s.train_pulses


def _train_reset_v(device, s):
    """The RESET amplitude at which train_pulses pulses of train_width_s carry LRS back to HRS:
    the lowest crossing within 10x of train_set_v (far above its scale a model may slow again,
    e.g. Stanford-PKU's heating flattens its sinh drive)."""
    target = s.train_pulses * s.train_width_s

    def misfit(ln_v):
        return np.log(min(crossing_time_s(device, s, "RESET", np.exp(ln_v)), 1e300) / target)

    ln_v = np.log(s.train_set_v * np.geomspace(0.1, 10.0, 41))
    fast = np.flatnonzero([misfit(v) <= 0 for v in ln_v])
    if not len(fast) or fast[0] == 0:
        raise ValueError(f"no RESET amplitude within 10x of train_set_v takes {s.train_pulses} pulses of "
                         f"{s.train_width_s:g} s across the window; give train_reset_v")
    return float(np.exp(brentq(misfit, ln_v[fast[0] - 1], ln_v[fast[0]], xtol=1e-9)))


def _own_temperature(device, s):
    """The rest happens at the model's own ambient temperature."""
    return getattr(device, device.temperature_param)


def _own_activation_energy(device, s):
    """The relaxation is activated like the model's own ion hopping (its ea)."""
    return device.ea


def _high_resistance_end(device, s):
    """The relaxation loses conductance (the sourced fit in the module docstring)."""
    return 1.0 - _on_end(device, s.read_v)


_RETENTION_RULES = (("retention_x_rest", _high_resistance_end),)
_DRIFT_RULES = (("lrs_margin", _lrs_margin), ("hrs_margin", _hrs_margin),
                ("sweep_period_s", _drift_sweep_period), ("read_width_s", _drift_read_width),
                ("pulse_widths_s", _pulse_widths), ("train_width_s", _train_width),
                ("train_reset_v", _train_reset_v)) + _RETENTION_RULES
DERIVED = {
    "lid_joglekar": _DRIFT_RULES,
    "lid_biolek": _DRIFT_RULES,
    "vteam": _RETENTION_RULES,
    "yakopcic": _RETENTION_RULES,
    "stanford_pku": (("pulse_widths_s", _pulse_widths), ("train_width_s", _train_width),
                     ("train_reset_v", _train_reset_v), ("retention_temperature_k", _own_temperature),
                     ("ea_ev", _own_activation_energy)) + _RETENTION_RULES,
}
"""Settings derived from the device, in order (later rules see earlier results)."""


def default_settings(model: str, params: dict | None = None, **overrides) -> Settings:
    """The settings of `model` with `params` changed: Settings defaults, then MODEL_SCALES[model],
    then the DERIVED rules on that device, then overrides (which are never re-derived)."""
    device = make_device(model, params)
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {[f.name for f in fields(Settings)]}")
    s = Settings(**{**MODEL_SCALES.get(model, {}), **overrides})
    for name, rule in DERIVED.get(model, ()):
        if name not in overrides:
            s = dataclasses.replace(s, **{name: rule(device, s)})
    s.check_time_span()
    return s


def settings_help() -> list[tuple[str, str, str]]:
    """(name, shared default, meaning) of every setting, the meaning read from the comment on its
    line in Settings (one source for the code and `circuitsim characterize --help`)."""
    import inspect
    import re

    found = re.findall(r"^ +(\w+): [^=\n]+= (.+?)  # (.+)$", inspect.getsource(Settings), re.MULTILINE)
    return [(name, default, meaning) for name, default, meaning in found]
