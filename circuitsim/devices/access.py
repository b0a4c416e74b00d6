"""NMOS access transistor of a 1T1R cell: numpy twin of nmos_access in models/access.lib."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from circuitsim.devices.library import lib_field
from circuitsim.validate import check_physical, finite_array, positive_scalar

GMIN_S = 1e-12  # ngspice's default gmin, which it puts across the drain junction of every MOSFET


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

    def drain_current(self, v_d: np.ndarray, v_g: np.ndarray, v_s: np.ndarray):
        """Current [A] from drain to source and its derivatives d/dv_d, d/dv_s [S].

        The device is symmetric: for v_d < v_s the roles of drain and source swap, as in SPICE.
        """
        forward = v_d >= v_s
        hi = np.where(forward, v_d, v_s)
        lo = np.where(forward, v_s, v_d)
        vds = hi - lo
        vgst = v_g - lo - self.vto
        beta = self.kp * self.w / self.l
        on = vgst > 0
        sat = vds >= vgst
        clm = 1 + self.lam * vds
        vgst_on = np.where(on, vgst, 0.0)
        i_lin = beta * clm * (vgst_on - 0.5 * vds) * vds
        i_sat = 0.5 * beta * clm * vgst_on**2
        i = np.where(sat, i_sat, i_lin)
        # derivatives with respect to the high terminal (d/dhi) and the low one (d/dlo)
        gds = np.where(sat, 0.5 * beta * self.lam * vgst_on**2,
                       beta * (self.lam * (vgst_on - 0.5 * vds) * vds + clm * (vgst_on - vds)))
        gm = np.where(sat, beta * clm * vgst_on, beta * clm * vds)
        gm = np.where(on, gm, 0.0)
        gds = np.where(on, gds, 0.0)
        d_hi, d_lo = gds, -gds - gm
        sign = np.where(forward, 1.0, -1.0)
        i_ds = sign * i + GMIN_S * (v_d - v_s)
        di_dvd = np.where(forward, d_hi, -d_lo) + GMIN_S
        di_dvs = np.where(forward, d_lo, -d_hi) - GMIN_S
        return i_ds, di_dvd, di_dvs

    def spice_model_line(self) -> str:
        """The .model card with this instance's numbers (the library's card carries the defaults)."""
        return (f".model {self.spice_model}_cs nmos level=1 vto={self.vto!r} kp={self.kp!r} "
                f"lambda={self.lam!r} is=0")
