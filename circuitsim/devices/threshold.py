"""Volatile threshold switch: numpy twin of threshold_switch in models/selectors.lib.

It has a state (ON fraction s with a ~1 ns time constant), so it is simulated in transients
(circuitsim.transient, alone or as the stateful device of an array's cells); it is not one
of Crossbar's DC selectors, whose .op solution would have to pick one of the two states of
its hysteresis arbitrarily.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.devices.library import lib_field
from circuitsim.devices.memristors import StateDevice, sigmoid


def softplus(z, width):
    """Smooth max(z, 0) of the given width, written to neither overflow nor lose its tail."""
    return np.maximum(z, 0.0) + width * np.log1p(np.exp(-np.abs(z) / width))


@dataclass(frozen=True)
class ThresholdSwitch(StateDevice):
    """Ovonic-threshold-style volatile switch (MODELS.md, "Selectors and access devices";
    after the OTS behaviour of Ovshinsky, PRL 21, 1968, as used for crossbar selectors).

    vth: threshold voltage [V], it snaps ON when |V| > vth; vhold: hold voltage [V], while ON
    it conducts beyond it (V ≈ vhold + I·ron) and snaps OFF once |V| < vhold; ron: ON slope
    resistance [Ω]; roff: OFF resistance [Ω]; tau: switching time constant [s]; vw: smoothing
    width [V]; x0: initial state s [-] (0 OFF, 1 ON).
    ds/dt = (on + (1 − on)·s·hold − s)/tau with on, hold smooth steps at vth and vhold;
    I = V/roff + s·sgn(V)·softplus(|V| − vhold)/ron.
    """

    vth: float = lib_field("selectors", "threshold_switch", "vth")
    vhold: float = lib_field("selectors", "threshold_switch", "vhold")
    ron: float = lib_field("selectors", "threshold_switch", "ron")
    roff: float = lib_field("selectors", "threshold_switch", "roff")
    tau: float = lib_field("selectors", "threshold_switch", "tau")
    vw: float = lib_field("selectors", "threshold_switch", "vw")
    x0: float = lib_field("selectors", "threshold_switch", "x0")

    spice_lib = "selectors"
    spice_subckt = "threshold_switch"
    _positive = ("vth", "vhold", "ron", "roff", "tau", "vw")

    def _check(self):
        if not self.vhold < self.vth:
            raise ValueError(f"ThresholdSwitch needs vhold < vth, got {self.vhold:g} >= {self.vth:g}")

    def current(self, v, x):
        return v / self.roff + x * np.sign(v) * softplus(np.abs(v) - self.vhold, self.vw) / self.ron

    def dxdt(self, v, x):
        on = sigmoid((np.abs(v) - self.vth) / self.vw)
        hold = sigmoid((np.abs(v) - self.vhold) / self.vw)
        return (on + (1.0 - on) * x * hold - x) / self.tau
