"""Memristor compact models: numpy twins of the subckts in models/memristors.lib.

Every model is a frozen dataclass whose fields are the subckt's parameters (same names,
defaults read from the .lib), with the same smooth formulation as the SPICE side:
`current(v, x)` is the port current [A] and `dxdt(v, x)` the rate [1/s] of the normalized
state x in [0, 1] (the voltage on the subckt's 1 F state capacitor), for port voltage v [V].
Both accept numpy arrays and broadcast.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from circuitsim.devices.library import lib_field
from circuitsim.validate import finite_array

EXP_CLAMP = 80.0  # the same clamp as the exp arguments in the .lib files
V_PROBE = 1e-6  # [V] half-width of the central difference in StateDevice.slope


def sigmoid(z):
    """Smooth step 0 -> 1, (1 + tanh z)/2: the .lib's replacement for if/stp."""
    return 0.5 * (1.0 + np.tanh(z))


def clamp01(x):
    return np.minimum(np.maximum(x, 0.0), 1.0)


class StateDevice:
    """Shared behaviour of two-terminal devices with one normalized state (memristors, the
    threshold switch): validation, SPICE parameters, the subckt it renders as.

    Subclasses are frozen dataclasses; `_positive` names fields that must be > 0;
    `bound_params` set the ON/OFF levels and `rate_params` the switching speed (what
    circuitsim.variability spreads device-to-device and cycle-to-cycle); `temperature_param`
    names the field that holds the device's own temperature [K], if the model has one.
    """

    spice_lib: ClassVar[str] = "memristors"
    spice_subckt: ClassVar[str]
    bound_params: ClassVar[tuple[str, ...]] = ()
    rate_params: ClassVar[tuple[str, ...]] = ()
    temperature_param: ClassVar[str | None] = None
    _positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        name = type(self).__name__
        for f in fields(self):
            value = float(finite_array(f"{name}.{f.name}", getattr(self, f.name), shape=()))
            if f.name in self._positive and value <= 0:
                raise ValueError(f"{name}.{f.name} must be > 0, got {value:g}")
            object.__setattr__(self, f.name, value)
        if not 0.0 <= self.x0 <= 1.0:
            raise ValueError(f"{name}.x0 (normalized initial state) must be in [0, 1], got {self.x0:g}")
        self._check()

    def _check(self) -> None:
        """Model-specific consistency checks (raise ValueError)."""

    def spice_params(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_state(self, x0: float):
        """The same device starting from normalized state x0."""
        return type(self)(**{**self.spice_params(), "x0": x0})

    def current(self, v, x):
        raise NotImplementedError

    def dxdt(self, v, x):
        raise NotImplementedError

    def slope(self, v, x):
        """dI/dV [S] at fixed state, by a central difference (what the numpy nodal Newton needs)."""
        return (self.current(v + V_PROBE, x) - self.current(v - V_PROBE, x)) / (2 * V_PROBE)


class _LinearIonDrift(StateDevice):
    """Shared equations of the linear ion drift model (Strukov et al., Nature 453, 2008)."""

    bound_params = ("ron", "roff")
    rate_params = ("uv",)

    def resistance(self, x):
        """R(x) = ron·x + roff·(1 − x) [Ω], with x clamped to [0, 1] as in the .lib."""
        xc = clamp01(x)
        return self.ron * xc + self.roff * (1.0 - xc)

    def current(self, v, x):
        return v / self.resistance(x)

    def window(self, v, x):
        raise NotImplementedError

    def dxdt(self, v, x):
        return self.uv * self.ron / self.d**2 * self.current(v, x) * self.window(v, x)

    def _check(self):
        if self.roff <= self.ron:
            raise ValueError(f"{type(self).__name__}: roff must exceed ron")


@dataclass(frozen=True)
class LinearIonDriftJoglekar(_LinearIonDrift):
    """Linear ion drift (Strukov et al., Nature 453, 2008) with the Joglekar window
    (Joglekar & Wolf, Eur. J. Phys. 30, 2009): f(x) = 1 − (2x − 1)^(2p).

    ron: fully doped (ON) resistance [Ω]; roff: undoped (OFF) resistance [Ω]; d: film
    thickness [m]; uv: dopant mobility [m²/(V·s)]; pwin: window exponent p [-]; x0: initial
    doped fraction [-]. x = 1 is ON; positive current raises x. Joglekar's x depends on the
    charge only, and it sticks at exactly x = 0 or 1.
    """

    ron: float = lib_field("memristors", "lid_joglekar", "ron")
    roff: float = lib_field("memristors", "lid_joglekar", "roff")
    d: float = lib_field("memristors", "lid_joglekar", "d")
    uv: float = lib_field("memristors", "lid_joglekar", "uv")
    pwin: float = lib_field("memristors", "lid_joglekar", "pwin")
    x0: float = lib_field("memristors", "lid_joglekar", "x0")

    spice_subckt = "lid_joglekar"
    _positive = ("ron", "roff", "d", "uv", "pwin")

    def window(self, v, x):
        return 1.0 - np.abs((2.0 * x - 1.0) ** 2) ** self.pwin


@dataclass(frozen=True)
class LinearIonDriftBiolek(_LinearIonDrift):
    """Linear ion drift (Strukov et al., Nature 453, 2008) with the Biolek window
    (Biolek et al., Radioengineering 18, 2009): f(x, I) = 1 − (x − stp(−I))^(2p).

    Parameters as LinearIonDriftJoglekar, plus vw: width [V] of the smooth step
    stp(−I) ≈ (1 − tanh(V/vw))/2 (I and V share their sign). Unlike Joglekar's, the window
    lets x leave a bound as soon as the current reverses.
    """

    ron: float = lib_field("memristors", "lid_biolek", "ron")
    roff: float = lib_field("memristors", "lid_biolek", "roff")
    d: float = lib_field("memristors", "lid_biolek", "d")
    uv: float = lib_field("memristors", "lid_biolek", "uv")
    pwin: float = lib_field("memristors", "lid_biolek", "pwin")
    x0: float = lib_field("memristors", "lid_biolek", "x0")
    vw: float = lib_field("memristors", "lid_biolek", "vw")

    spice_subckt = "lid_biolek"
    _positive = ("ron", "roff", "d", "uv", "pwin", "vw")

    def window(self, v, x):
        return 1.0 - np.abs((x - sigmoid(-v / self.vw)) ** 2) ** self.pwin


@dataclass(frozen=True)
class VTEAM(StateDevice):
    """VTEAM, the voltage-threshold adaptive memristor (Kvatinsky et al., IEEE TCAS-II 62(8),
    2015), with the Kvatinsky window and R linear in x.

    ron, roff: resistance [Ω] at x = xon, xoff; xon, xoff: state bounds [m]; kon (< 0),
    koff (> 0): switching rates [m/s]; alphaon, alphaoff: rate exponents [-]; von (< 0),
    voff (> 0): threshold voltages [V]; aon, aoff: window positions [m]; wc: window width
    [m]; x0: initial normalized state w = (x − xon)/(xoff − xon) [-]. w = 0 is ON (ron);
    V > voff drives towards OFF, V < von towards ON, and between them nothing moves.
    """

    ron: float = lib_field("memristors", "vteam", "ron")
    roff: float = lib_field("memristors", "vteam", "roff")
    xon: float = lib_field("memristors", "vteam", "xon")
    xoff: float = lib_field("memristors", "vteam", "xoff")
    kon: float = lib_field("memristors", "vteam", "kon")
    koff: float = lib_field("memristors", "vteam", "koff")
    alphaon: float = lib_field("memristors", "vteam", "alphaon")
    alphaoff: float = lib_field("memristors", "vteam", "alphaoff")
    von: float = lib_field("memristors", "vteam", "von")
    voff: float = lib_field("memristors", "vteam", "voff")
    aon: float = lib_field("memristors", "vteam", "aon")
    aoff: float = lib_field("memristors", "vteam", "aoff")
    wc: float = lib_field("memristors", "vteam", "wc")
    x0: float = lib_field("memristors", "vteam", "x0")

    spice_subckt = "vteam"
    bound_params = ("ron", "roff")
    rate_params = ("kon", "koff")
    _positive = ("ron", "roff", "koff", "alphaon", "alphaoff", "voff", "wc")

    def _check(self):
        if self.roff <= self.ron or self.xoff <= self.xon or self.kon >= 0 or self.von >= 0:
            raise ValueError("VTEAM needs roff > ron, xoff > xon, kon < 0 and von < 0")

    def current(self, v, x):
        return v / (self.ron + (self.roff - self.ron) * clamp01(x))

    def dxdt(self, v, x):
        pos = self.xon + x * (self.xoff - self.xon)
        f_off = np.exp(-np.exp(np.minimum((pos - self.aoff) / self.wc, EXP_CLAMP)))
        f_on = np.exp(-np.exp(np.minimum(-(pos - self.aon) / self.wc, EXP_CLAMP)))
        rate = (self.koff * np.maximum(v / self.voff - 1.0, 0.0) ** self.alphaoff * f_off
                + self.kon * np.maximum(v / self.von - 1.0, 0.0) ** self.alphaon * f_on)
        return rate / (self.xoff - self.xon)


@dataclass(frozen=True)
class Yakopcic(StateDevice):
    """Yakopcic generalized memristor model (Yakopcic et al., IEEE EDL 32(10), 2011;
    IEEE TCAD 32(8), 2013); defaults are the published Ag-chalcogenide fit.

    a1, a2: current scale [A] for V >= 0 and V < 0; b: sinh slope [1/V]; vp, vn: positive and
    negative thresholds [V]; ap, an: rate magnitudes [1/s]; xp, xn: window onset points [-];
    alphap, alphan: window decay constants [-]; eta: direction of motion, +1 or −1 [-];
    x0: initial state [-]; vw: width [V] of the V >= 0 blend; xw: width [-] of the window's
    x >= xp blends. I = a·x·sinh(b·V); dx/dt = η·g(V)·f(x), g = 0 for −vn <= V <= vp.
    """

    a1: float = lib_field("memristors", "yakopcic", "a1")
    a2: float = lib_field("memristors", "yakopcic", "a2")
    b: float = lib_field("memristors", "yakopcic", "b")
    vp: float = lib_field("memristors", "yakopcic", "vp")
    vn: float = lib_field("memristors", "yakopcic", "vn")
    ap: float = lib_field("memristors", "yakopcic", "ap")
    an: float = lib_field("memristors", "yakopcic", "an")
    xp: float = lib_field("memristors", "yakopcic", "xp")
    xn: float = lib_field("memristors", "yakopcic", "xn")
    alphap: float = lib_field("memristors", "yakopcic", "alphap")
    alphan: float = lib_field("memristors", "yakopcic", "alphan")
    eta: float = lib_field("memristors", "yakopcic", "eta")
    x0: float = lib_field("memristors", "yakopcic", "x0")
    vw: float = lib_field("memristors", "yakopcic", "vw")
    xw: float = lib_field("memristors", "yakopcic", "xw")

    spice_subckt = "yakopcic"
    bound_params = ("a1", "a2")
    rate_params = ("ap", "an")
    _positive = ("a1", "a2", "b", "vp", "vn", "ap", "an", "alphap", "alphan", "vw", "xw")

    def _check(self):
        if self.eta not in (-1.0, 1.0):
            raise ValueError(f"Yakopcic.eta must be +1 or -1, got {self.eta:g}")
        if not (0 < self.xp < 1 and 0 < self.xn < 1):
            raise ValueError("Yakopcic.xp and xn must lie strictly between 0 and 1")

    def current(self, v, x):
        scale = self.a2 + (self.a1 - self.a2) * sigmoid(v / self.vw)
        return np.maximum(x, 0.0) * scale * np.sinh(self.b * v)

    def _f_rising(self, x):
        """Window while x grows (eta·V >= 0): 1 below xp, decaying to 0 at x = 1."""
        tail = np.exp(-self.alphap * (x - self.xp)) * ((self.xp - x) / (1.0 - self.xp) + 1.0)
        return 1.0 + sigmoid((x - self.xp) / self.xw) * (tail - 1.0)

    def _f_falling(self, x):
        """Window while x shrinks: 1 above 1 − xn, decaying to 0 at x = 0."""
        tail = np.exp(self.alphan * (x + self.xn - 1.0)) * x / (1.0 - self.xn)
        return 1.0 + sigmoid((1.0 - self.xn - x) / self.xw) * (tail - 1.0)

    def dxdt(self, v, x):
        g_pos = self.ap * np.maximum(np.exp(np.minimum(v, EXP_CLAMP)) - np.exp(self.vp), 0.0)
        g_neg = self.an * np.maximum(np.exp(np.minimum(-v, EXP_CLAMP)) - np.exp(self.vn), 0.0)
        up, down = 0.5 * (1 + self.eta), 0.5 * (1 - self.eta)
        f_rise, f_fall = self._f_rising(x), self._f_falling(x)
        return self.eta * (g_pos * (up * f_rise + down * f_fall) - g_neg * (up * f_fall + down * f_rise))


KB_OVER_Q = 1.380649e-23 / 1.602176634e-19  # [V/K] kB/q, the same expression as the .lib's kq
NM = 1e-9  # [m] the unit of the gap in gamma = gamma0 - beta·(g/1 nm)^alpha (and of the .lib's gap node)


@dataclass(frozen=True)
class StanfordPKU(StateDevice):
    """Stanford-PKU gap-based RRAM with Joule heating (Jiang, Wong et al., SISPAD 2014 and
    IEEE TED 63(5), 2016; the Stanford RRAM model v1.0), without the optional variability kick.

    i0: current scale [A]; g0: gap decay length [m]; v0: sinh voltage scale [V]; vel0: gap
    velocity prefactor [m/s]; alpha, beta, gamma0: field enhancement γ = γ0 − β·(g/1 nm)^α [-];
    ea: activation energy [eV]; a0: hopping distance [m]; tox: oxide thickness [m]; f_min:
    field below which nothing switches [V/m]; rth: thermal resistance [K/W]; t0: ambient
    temperature [K]; g_min, g_max: gap bounds [m]; x0: initial normalized gap [-]; vw: width
    [V] of the threshold and polarity blends; xw: width [-] of the bound windows.

    State x = (g − g_min)/(g_max − g_min): x = 0 is LRS (smallest gap), x = 1 HRS.
    I = i0·exp(−g/g0)·sinh(V/v0); T = t0 + |V·I|·rth; dg/dt = −vel0·exp(−ea/kT)·
    sinh(γ·a0/tox·V/kT) (kT in eV), switched off smoothly where γ·|V|/tox < f_min. Positive V
    shrinks the gap (SET), negative V grows it (RESET). I depends on (V, g) only, so T is
    explicit: quasi-static heating, no algebraic loop.
    """

    i0: float = lib_field("memristors", "stanford_pku", "i0")
    g0: float = lib_field("memristors", "stanford_pku", "g0")
    v0: float = lib_field("memristors", "stanford_pku", "v0")
    vel0: float = lib_field("memristors", "stanford_pku", "vel0")
    alpha: float = lib_field("memristors", "stanford_pku", "alpha")
    beta: float = lib_field("memristors", "stanford_pku", "beta")
    gamma0: float = lib_field("memristors", "stanford_pku", "gamma0")
    ea: float = lib_field("memristors", "stanford_pku", "ea")
    a0: float = lib_field("memristors", "stanford_pku", "a0")
    tox: float = lib_field("memristors", "stanford_pku", "tox")
    f_min: float = lib_field("memristors", "stanford_pku", "f_min")
    rth: float = lib_field("memristors", "stanford_pku", "rth")
    t0: float = lib_field("memristors", "stanford_pku", "t0")
    g_min: float = lib_field("memristors", "stanford_pku", "g_min")
    g_max: float = lib_field("memristors", "stanford_pku", "g_max")
    x0: float = lib_field("memristors", "stanford_pku", "x0")
    vw: float = lib_field("memristors", "stanford_pku", "vw")
    xw: float = lib_field("memristors", "stanford_pku", "xw")

    spice_subckt = "stanford_pku"
    bound_params = ("g_min", "g_max")
    rate_params = ("vel0",)
    temperature_param = "t0"
    _positive = ("i0", "g0", "v0", "vel0", "alpha", "ea", "a0", "tox", "f_min", "rth", "t0", "g_min", "g_max",
                 "vw", "xw")

    def _check(self):
        if self.g_max <= self.g_min:
            raise ValueError("StanfordPKU needs g_max > g_min")
        if self.gamma(self.g_max) <= 0:
            raise ValueError("StanfordPKU needs gamma0 - beta·(g_max/1 nm)^alpha > 0")

    def gap(self, x):
        """Gap [m] at normalized state x (not clamped, as in the .lib: the bound windows hold x
        within [xw, 1 − xw])."""
        return self.g_min + (self.g_max - self.g_min) * x

    def gamma(self, g):
        """Field enhancement factor γ [-] at gap g [m]."""
        return self.gamma0 - self.beta * (g / NM) ** self.alpha

    def current(self, v, x):
        return self.i0 * np.exp(-self.gap(x) / self.g0) * np.sinh(np.clip(v / self.v0, -EXP_CLAMP, EXP_CLAMP))

    def temperature(self, v, x):
        """Filament temperature T = t0 + |V·I|·rth [K] at port voltage v [V] and state x."""
        return self.t0 + np.abs(v * self.current(v, x)) * self.rth

    def _bound_window(self, d):
        """tanh(d/xw − 1) of the distance d to a bound: 1 far from it, 0 at xw from it, restoring
        beyond. A rest point at the bound itself would let x shrink towards 0 without end, and
        ngspice's relative error control would shrink its time step with it."""
        return np.tanh(d / self.xw - 1.0)

    def dxdt(self, v, x):
        kt_ev = KB_OVER_Q * self.temperature(v, x)
        gamma = self.gamma(self.gap(x))
        drive = np.sinh(np.clip(gamma * self.a0 / self.tox * v / kt_ev, -EXP_CLAMP, EXP_CLAMP))
        field_on = sigmoid((gamma * np.abs(v) - self.f_min * self.tox) / (gamma * self.vw))
        window = sigmoid(v / self.vw) * self._bound_window(x) + sigmoid(-v / self.vw) * self._bound_window(1.0 - x)
        return -self.vel0 / (self.g_max - self.g_min) * np.exp(-self.ea / kt_ev) * drive * field_on * window


MEMRISTORS = {"lid_joglekar": LinearIonDriftJoglekar, "lid_biolek": LinearIonDriftBiolek,
              "vteam": VTEAM, "yakopcic": Yakopcic, "stanford_pku": StanfordPKU}
