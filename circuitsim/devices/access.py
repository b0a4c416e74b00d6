"""NMOS access transistor of a 1T1R cell: twin of nmos_access in models/access.lib (its law in devices/laws.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.devices.library import lib_field
from circuitsim.validate import check_physical, finite_array, positive_scalar


@dataclass(frozen=True)
class NmosAccess:
    """Shichman-Hodges (SPICE level 1) NMOS with its bulk tied to the source.

    vto: threshold [V]; kp: transconductance parameter [A/V²]; lam: channel-length
    modulation λ [1/V]; w, l: channel width and length [m]; v_gate_on: gate voltage [V] of a
    selected row. Its saturation current kp/2·(w/l)·(v_gate_on − vto)² is the cell's current
    compliance.
    """

    vto: float = lib_field("access", "nmos_access", "vto")
    kp: float = lib_field("access", "nmos_access", "kp")
    lam: float = lib_field("access", "nmos_access", "lambda")
    w: float = lib_field("access", "access_nmos", "w")
    l: float = lib_field("access", "access_nmos", "l")  # noqa: E741 - SPICE's own name for channel length
    v_gate_on: float = 1.8

    spice_lib = "access"
    spice_model = "nmos_access"

    def __post_init__(self):
        object.__setattr__(self, "vto", float(finite_array("NmosAccess.vto", self.vto, shape=())))
        object.__setattr__(self, "lam", float(finite_array("NmosAccess.lam", self.lam, shape=(), nonnegative=True)))
        object.__setattr__(self, "v_gate_on", float(finite_array("NmosAccess.v_gate_on", self.v_gate_on, shape=())))
        for name in ("kp", "w", "l"):
            object.__setattr__(self, name, positive_scalar(f"NmosAccess.{name}", getattr(self, name)))
        for name in ("vto", "v_gate_on"):
            check_physical(f"NmosAccess.{name}", getattr(self, name), "V")

    def law(self) -> tuple[str, tuple[float, ...]]:
        """Its law in devices/laws.py and the law's parameters: vto, β = kp·w/l, λ."""
        return "nmos", (self.vto, self.kp * self.w / self.l, self.lam)

    def drain_current(self, v_d: np.ndarray, v_g: np.ndarray, v_s: np.ndarray):
        """Current [A] from drain to source and its derivatives d/dv_d, d/dv_s [S].

        The device is symmetric: for v_d < v_s the roles of drain and source swap, as in SPICE.
        """
        from circuitsim.devices import laws  # numba: imported on first use (see there)

        return laws.evaluate(self.law(), v_d, v_s, v_g)

    def spice_model_line(self) -> str:
        """The .model card with this instance's numbers (the library's card carries the defaults)."""
        return (f".model {self.spice_model}_cs nmos level=1 vto={self.vto!r} kp={self.kp!r} "
                f"lambda={self.lam!r} is=0")
