"""Selector devices in series with a cell: numpy twins of the subckts in models/selectors.lib."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from circuitsim.devices.library import lib_default
from circuitsim.validate import positive_scalar

SINH_CLAMP = 80.0  # the same clamp as the B-source in models/selectors.lib


@dataclass(frozen=True)
class SinhSelector:
    """Tunnelling selector, I = i0·sinh(V/v0) (MODELS.md, "Selectors and access devices").

    i0: current scale [A]; v0: voltage scale [V]. Half-bias nonlinearity I(V)/I(V/2) ≈ exp(V/(2·v0)).
    """

    i0: float = field(default_factory=lambda: lib_default("selectors", "sinh_selector", "i0"))
    v0: float = field(default_factory=lambda: lib_default("selectors", "sinh_selector", "v0"))

    spice_lib = "selectors"
    spice_subckt = "sinh_selector"

    def __post_init__(self):
        object.__setattr__(self, "i0", positive_scalar("SinhSelector.i0", self.i0))
        object.__setattr__(self, "v0", positive_scalar("SinhSelector.v0", self.v0))

    def current(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current [A] and its derivative dI/dV [S] at voltage v [V]."""
        xc = np.clip(v / self.v0, -SINH_CLAMP, SINH_CLAMP)
        # Past the clamp the slope is kept at its edge value so Newton's Jacobian stays regular.
        return self.i0 * np.sinh(xc), self.i0 / self.v0 * np.cosh(xc)

    def spice_params(self) -> dict[str, float]:
        return {"i0": self.i0, "v0": self.v0}
