"""After programming: relaxation of the programmed states over time and temperature, and read noise.

Relaxation uses the retention law of the characterization protocol
(characterize.protocols.LAWS['retention']): x(t) = x_rest + (x_p − x_rest)·(1 + t/τ)^(−ν), with
τ = τ0·exp(Ea/kB·(1/T − 1/T_ref)), at any rest temperature, with the protocol's own defaults:
τ0, ν and x_rest fitted to a measured ReRAM (aihwkit's CMO/HfOx drift; the source is in
characterize.settings), Ea the model's own where it has one (Stanford-PKU's ea), else Settings'
0.6 eV (the same HfOx value). Not modeled: the spread that grows with log t (aihwkit's CMO
σ = 0.042·ln t + 0.41 µS; Wan et al. Nature 608, 504 (2022) via ReRamWan2022NoiseModel, no
mean drift).

Read noise at a read t seconds after programming (one read lasting t_read_s): 1/f noise of
relative PSD q/f integrated from 1/t to 1/t_read gives a relative σ² = q·ln((t + t_read)/(2·t_read))
(the form aihwkit uses for PCM read noise); q is interpolated in log G between q_hrs at the
device's lowest conductance and q_lrs at its highest (HRS is noisier). Random telegraph noise:
a share `rtn_fraction` of the cells hold one trap that, when occupied (probability
tau_high/(tau_low + tau_high), sampled per read), raises the cell's current by rtn_step
(variability.telegraph_noise draws the same two-level process as a time series).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from circuitsim.characterize.protocols import LAWS, relaxed_state
from circuitsim.characterize.settings import Settings, default_settings
from circuitsim.devices.memristors import MEMRISTORS, StateDevice
from circuitsim.programming.pulses import CellModels
from circuitsim.validate import finite_array, positive_scalar

RETENTION_LAW = LAWS["retention"]


@dataclass(frozen=True, eq=False)
class RetentionLaw:
    """A model's retention law: its characterization settings (retention_tau_s, retention_nu,
    retention_x_rest, ea_ev, t_ref_k), applied by characterize.protocols.relaxed_state."""

    settings: Settings

    @classmethod
    def of(cls, device: StateDevice, **overrides) -> RetentionLaw:
        """The law of device's model with its own parameters (e.g. Stanford-PKU's own ea);
        overrides: settings to change (e.g. retention_tau_s=1e4)."""
        names = [name for name, kind in MEMRISTORS.items() if kind is type(device)]
        if not names:
            raise ValueError(f"{type(device).__name__} has no retention law (not one of {sorted(MEMRISTORS)})")
        return cls(default_settings(names[0], device.spice_params(), **overrides))

    def state(self, x_programmed, t_s, temperature_k: float) -> np.ndarray:
        """States after resting t_s [s] (scalar or array, broadcast) at temperature_k [K]."""
        rest = dataclasses.replace(self.settings, retention_temperature_k=positive_scalar("temperature_k",
                                                                                          temperature_k))
        t = finite_array("t_s", t_s, nonnegative=True)
        return relaxed_state(np.asarray(x_programmed, dtype=float), t, rest)

    def as_dict(self) -> dict:
        s = self.settings
        return {"law": RETENTION_LAW, "tau0_s": s.retention_tau_s, "nu": s.retention_nu,
                "x_rest": s.retention_x_rest, "ea_ev": s.ea_ev, "t_ref_k": s.t_ref_k}


@dataclass(frozen=True)
class ReadNoise:
    """Read noise (module docstring): q_lrs, q_hrs relative 1/f PSD coefficients [-]; t_read_s:
    duration of one read [s]; rtn_fraction: share of cells with a telegraph trap [-];
    rtn_step: relative current step of an occupied trap [-]; rtn_occupancy: probability that
    a trap is occupied at a read [-]."""

    q_lrs: float = 1e-4
    q_hrs: float = 1e-3
    t_read_s: float = 1e-7
    rtn_fraction: float = 0.0
    rtn_step: float = 0.05
    rtn_occupancy: float = 0.5

    def __post_init__(self):
        for name in ("q_lrs", "q_hrs", "rtn_fraction", "rtn_step", "rtn_occupancy"):
            finite_array(f"ReadNoise.{name}", getattr(self, name), shape=(), nonnegative=True)
        positive_scalar("ReadNoise.t_read_s", self.t_read_s)
        if self.rtn_fraction > 1 or self.rtn_occupancy > 1:
            raise ValueError("ReadNoise.rtn_fraction and rtn_occupancy must be in [0, 1]")

    def sample(self, g: np.ndarray, t_s: float, g_low: np.ndarray, g_high: np.ndarray, rng) -> np.ndarray:
        """Conductances g [S] as one noisy read t_s [s] after programming sees them."""
        g_low = np.maximum(g_low, 1e-6 * g_high)  # a model whose OFF end conducts nothing (Yakopcic's x = 0)
        frac = np.clip(np.log(np.maximum(g, g_low) / g_low) / np.log(g_high / g_low), 0.0, 1.0)
        q = self.q_hrs * (self.q_lrs / self.q_hrs) ** frac if self.q_hrs > 0 and self.q_lrs > 0 else \
            self.q_hrs + (self.q_lrs - self.q_hrs) * frac
        sigma = np.sqrt(q * np.log(max((t_s + self.t_read_s) / (2 * self.t_read_s), 1.0)))
        noisy = g * (1.0 + sigma * rng.standard_normal(g.shape))
        trapped = (rng.random(g.shape) < self.rtn_fraction) & (rng.random(g.shape) < self.rtn_occupancy)
        return np.maximum(noisy * (1.0 + self.rtn_step * trapped), 0.0)


def conductance_at(cells, states, t_s: float, *, v_read: float, temperature_k: float = 300.0,
                   law: RetentionLaw | None = None, noise: ReadNoise | None = None, frozen=None,
                   seed=0) -> np.ndarray:
    """Read conductances (rows, cols) [S] of an array programmed to `states`, t_s [s] later,
    having rested at temperature_k [K]: relaxed by law (default: the model's own,
    RetentionLaw.of), read at v_read [V], with noise (None: noiseless). frozen: cells that do
    not relax (stuck-at faults)."""
    x_p = finite_array("states", states)
    models = CellModels(cells, x_p.shape)
    law = RetentionLaw.of(models.groups[0][0]) if law is None else law
    x = law.state(x_p, t_s, temperature_k)
    if frozen is not None:
        x = np.where(frozen, x_p, x)
    g = models.read_conductance(x, v_read)
    if noise is None:
        return g
    g_ends = (models.read_conductance(np.zeros(x.shape), v_read), models.read_conductance(np.ones(x.shape), v_read))
    return noise.sample(g, float(t_s), np.minimum(*g_ends), np.maximum(*g_ends), np.random.default_rng(seed))
