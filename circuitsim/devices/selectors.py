"""Selector devices in series with a cell: twins of the subckts in models/selectors.lib (laws in devices/laws.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.devices.library import lib_field
from circuitsim.validate import check_physical, positive_scalar


class CompiledSelector:
    """A two-terminal selector whose current law is compiled in devices/laws.py: a subclass's
    law() names the law and gives its parameters."""

    def current(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current [A] and its derivative dI/dV [S] at voltage v [V]."""
        from circuitsim.devices import laws  # numba: imported on first use (see there)

        i, slope, _ = laws.evaluate(self.law(), v, 0.0)
        return i, slope


@dataclass(frozen=True)
class SinhSelector(CompiledSelector):
    """Tunnelling selector, I = i0·sinh(V/v0) (MODELS.md, "Selectors and access devices").

    i0: current scale [A]; v0: voltage scale [V]. Half-bias nonlinearity I(V)/I(V/2) ≈ exp(V/(2·v0)).
    """

    i0: float = lib_field("selectors", "sinh_selector", "i0")
    v0: float = lib_field("selectors", "sinh_selector", "v0")

    spice_lib = "selectors"
    spice_subckt = "sinh_selector"

    def __post_init__(self):
        object.__setattr__(self, "i0", positive_scalar("SinhSelector.i0", self.i0))
        object.__setattr__(self, "v0", positive_scalar("SinhSelector.v0", self.v0))
        check_physical("SinhSelector.i0", self.i0, "A")
        check_physical("SinhSelector.v0", self.v0, "V")

    def law(self) -> tuple[str, tuple[float, ...]]:
        """Its law in devices/laws.py and the law's parameters."""
        return "sinh", (self.i0, self.v0)

    def spice_params(self) -> dict[str, float]:
        return {"i0": self.i0, "v0": self.v0}


BOLTZMANN_J_PER_K = 1.38064852e-23  # the constants ngspice uses for its thermal voltage
ELEMENTARY_CHARGE_C = 1.6021766208e-19
NGSPICE_TEMP_K = 300.15  # ngspice's default circuit temperature, 27 °C


@dataclass(frozen=True)
class Diode(CompiledSelector):
    """Junction diode selector: ngspice's D model (models/selectors.lib, MODELS.md "Selectors").

    isat: saturation current [A]; ideality: emission coefficient n [-]; bipolar: False for one
    diode conducting p -> n (unipolar cells), True for an anti-parallel pair (bipolar cells).
    I = isat·(exp(V/(n·Vt)) − 1) + gmin·V with Vt = kT/q at 27 °C; below −3·n·Vt ngspice uses
    −isat·(1 + (3·n·Vt/(e·V))³), and so does this twin.
    """

    isat: float = lib_field("selectors", "diode_selector", "isat")
    ideality: float = lib_field("selectors", "diode_selector", "ideality")
    bipolar: bool = False

    spice_lib = "selectors"

    def __post_init__(self):
        object.__setattr__(self, "isat", positive_scalar("Diode.isat", self.isat))
        object.__setattr__(self, "ideality", positive_scalar("Diode.ideality", self.ideality))
        check_physical("Diode.isat", self.isat, "A")
        if not isinstance(self.bipolar, bool):
            raise TypeError(f"Diode.bipolar must be True or False, got {self.bipolar!r}")

    @property
    def spice_subckt(self) -> str:
        return "diode_pair_selector" if self.bipolar else "diode_selector"

    def law(self) -> tuple[str, tuple[float, ...]]:
        """Its law in devices/laws.py and the law's parameters: saturation current and n·Vt."""
        vte = self.ideality * BOLTZMANN_J_PER_K * NGSPICE_TEMP_K / ELEMENTARY_CHARGE_C
        return ("diode_pair" if self.bipolar else "diode"), (self.isat, vte)

    def spice_params(self) -> dict[str, float]:
        return {"isat": self.isat, "ideality": self.ideality}


@dataclass(frozen=True)
class CurrentLimiter(CompiledSelector):
    """An SMU's current compliance as a series element: below the limit it passes the current
    through r_on (the source holds its voltage), at the limit the current saturates smoothly:
    I = i·tanh(V/(i·r_on)) with i = i_pos for V >= 0 and i_neg for V < 0 (the two branches
    meet with the same slope 1/r_on at 0 V, so I(V) is smooth enough for Newton).

    i_pos, i_neg: compliance [A] for current flowing p -> n and n -> p; r_on: series resistance
    [Ω] below the limit. The same formula is the B-source of current_limiter in models/selectors.lib.
    """

    i_pos: float
    i_neg: float
    r_on: float = lib_field("selectors", "current_limiter", "r_on")

    spice_lib = "selectors"
    spice_subckt = "current_limiter"

    def __post_init__(self):
        for name, unit in (("i_pos", "A"), ("i_neg", "A"), ("r_on", "Ω")):
            object.__setattr__(self, name, positive_scalar(f"CurrentLimiter.{name}", getattr(self, name)))
            check_physical(f"CurrentLimiter.{name}", getattr(self, name), unit)

    def law(self) -> tuple[str, tuple[float, ...]]:
        """Its law in devices/laws.py and the law's parameters."""
        return "limiter", (self.i_pos, self.i_neg, self.r_on)

    def spice_params(self) -> dict[str, float]:
        return {"i_pos": self.i_pos, "i_neg": self.i_neg, "r_on": self.r_on}

