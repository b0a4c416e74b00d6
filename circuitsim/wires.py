"""Wire segment resistance and capacitance from metal geometry, and presets from published tools.

A crossbar line is a chain of segments, one per cell pitch; Crossbar takes each segment's
resistance (r_row / r_col [Ω]) and capacitance (c_row / c_col [F]). This module derives them
from the line's geometry so a designer starts from a metal stack or a node name rather than
from guessed ohms and farads. Formulas (docs/wires-and-waveforms.md has the derivation notes):

Resistance R = ρ·L/(w·t), ρ the bulk resistivity ρ0 raised by the size effect:
  - grain-boundary scattering (Mayadas & Shatzkes, Phys. Rev. B 1, 1382, 1970):
    ρ_MS/ρ0 = 1 / (1 − 3α/2 + 3α² − 3α³·ln(1 + 1/α)),  α = (λ/d)·R/(1 − R),
    λ the electron mean free path, d the mean grain size (about the line width), R the
    probability of reflection at a grain boundary;
  - surface scattering (Fuchs 1938, Sondheimer 1952) in its thick-film limit on the four walls,
    added to it (the combined form of Steinhögl et al., Phys. Rev. B 66, 075414, 2002, which
    IMAC-Sim uses with C = 1 and w = t):  Δρ_FS/ρ0 = (3/8)·C·(1 − p)·λ·(1/w + 1/t),
    p the fraction of electrons the walls reflect specularly;
  - a diffusion barrier of thickness b on both side walls and the bottom carries no current
    (NeuroSim's correction): ρ_eff = ρ / (1 − (2t + w)·b/(w·t)).
Capacitance per metre of a line of width w, thickness t, at height h over a ground plane, with
neighbours at edge-to-edge spacing s in a dielectric of permittivity ε = ε_r·ε0 (Sakurai &
Tamaru, IEEE Trans. Electron Devices 30(2), 183-185, 1983):
  c_ground = ε·[1.15·(w/h) + 2.80·(t/h)^0.222]     (parallel plate, widened, plus the fringe)
  c_couple = ε·[0.03·(w/h) + 0.83·(t/h) − 0.07·(t/h)^0.222]·(s/h)^−1.34   (to each neighbour)
Their fit covers about 0.3 ≤ w/h ≤ 30, 0.3 ≤ t/h ≤ 30 (ground) and 0.3 ≤ w/h, t/h ≤ 10,
0.5 ≤ s/h ≤ 10 (coupling); outside it a FormulaRangeWarning says so.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from circuitsim.errors import FormulaRangeWarning
from circuitsim.validate import finite_array, positive_scalar

EPSILON_0_F_PER_M = 8.8541878128e-12
# NeuroSim's wire capacitance, the same for every node: 0.2 fF/µm (SubArray.cpp, capRow1/capCol)
NEUROSIM_C_F_PER_M = 0.2e-15 / 1e-6

# Sakurai–Tamaru fit ranges: (low, high) of w/h, t/h, s/h
_GROUND_RANGE = {"w/h": (0.3, 30.0), "t/h": (0.3, 30.0)}
_COUPLE_RANGE = {"w/h": (0.3, 10.0), "t/h": (0.3, 10.0), "s/h": (0.5, 10.0)}


@dataclass(frozen=True)
class Metal:
    """A line metal: rho_bulk_ohm_m its bulk resistivity [Ω·m], mean_free_path_m its electrons'
    mean free path λ [m], specularity p of its walls (0 = fully diffuse), reflection R of its
    grain boundaries (0..1). Defaults: copper with IMAC-Sim's scattering figures (mapLayer.py)."""

    rho_bulk_ohm_m: float = 1.678e-8  # Cu at 20 °C
    mean_free_path_m: float = 39e-9
    specularity: float = 0.25
    reflection: float = 0.3

    def __post_init__(self):
        positive_scalar("Metal.rho_bulk_ohm_m", self.rho_bulk_ohm_m)
        positive_scalar("Metal.mean_free_path_m", self.mean_free_path_m)
        if not 0.0 <= self.specularity <= 1.0:
            raise ValueError(f"Metal.specularity must be in [0, 1], got {self.specularity!r}")
        if not 0.0 <= self.reflection < 1.0:
            raise ValueError(f"Metal.reflection must be in [0, 1), got {self.reflection!r}")


COPPER = Metal()


@dataclass(frozen=True)
class WireSegment:
    """One segment of a line: r_segment_ohm [Ω]; c_ground_f [F] to the ground plane; c_couple_f
    [F] to each of its two neighbouring lines; length_m [m]; resistivity_ohm_m [Ω·m] the
    effective resistivity used; source: where the figures come from.

    Pass r_segment_ohm as r_row / r_col, c_ground_f as c_row / c_col and c_couple_f as c_couple;
    or, without coupling, c_total_f (ground plus both couplings) as c_row / c_col, which is exact
    while the neighbouring lines hold still (a single selected line, neighbours at a DC bias).
    """

    r_segment_ohm: float
    c_ground_f: float
    c_couple_f: float
    length_m: float
    resistivity_ohm_m: float
    source: str

    @property
    def c_total_f(self) -> float:
        return self.c_ground_f + 2.0 * self.c_couple_f

    @property
    def tau_segment_s(self) -> float:
        """r·c_total of one segment [s]; a line of n segments has an Elmore delay of about
        n²·tau/2 from its driven end."""
        return self.r_segment_ohm * self.c_total_f


def grain_boundary_factor(mean_free_path_m: float, grain_size_m: float, reflection: float) -> float:
    """ρ_MS/ρ0 of Mayadas–Shatzkes grain-boundary scattering (>= 1; 1 for R = 0)."""
    if reflection == 0:
        return 1.0
    alpha = mean_free_path_m / grain_size_m * reflection / (1.0 - reflection)
    return 1.0 / (1.0 - 1.5 * alpha + 3 * alpha**2 - 3 * alpha**3 * math.log1p(1.0 / alpha))


def surface_scattering_term(width_m: float, thickness_m: float, mean_free_path_m: float, specularity: float,
                            c: float = 1.0) -> float:
    """Δρ_FS/ρ0 of Fuchs–Sondheimer surface scattering on the four walls (thick-film limit)."""
    return 0.375 * c * (1.0 - specularity) * mean_free_path_m * (1.0 / width_m + 1.0 / thickness_m)


def size_effect_resistivity(width_m: float, thickness_m: float, metal: Metal = COPPER, *,
                            grain_size_m: float | None = None, fs_c: float = 1.0) -> float:
    """Resistivity [Ω·m] of a w×t line with grain-boundary and surface scattering:
    ρ0·(ρ_MS/ρ0 + Δρ_FS/ρ0); grain_size_m defaults to the width (grains span the line)."""
    w = positive_scalar("width_m", width_m)
    t = positive_scalar("thickness_m", thickness_m)
    d = w if grain_size_m is None else positive_scalar("grain_size_m", grain_size_m)
    factor = grain_boundary_factor(metal.mean_free_path_m, d, metal.reflection)
    factor += surface_scattering_term(w, t, metal.mean_free_path_m, metal.specularity, fs_c)
    return metal.rho_bulk_ohm_m * factor


def barrier_resistivity(rho_ohm_m: float, width_m: float, thickness_m: float, barrier_m: float) -> float:
    """Effective resistivity [Ω·m] of a line whose side walls and bottom carry a barrier of
    thickness barrier_m that conducts nothing (NeuroSim, Param.cpp)."""
    lost = (2 * thickness_m + width_m) * barrier_m / (width_m * thickness_m)
    if barrier_m < 0 or lost >= 1:
        raise ValueError(f"barrier_m = {barrier_m:g} m must be >= 0 and leave copper in a "
                         f"{width_m:g} x {thickness_m:g} m line")
    return rho_ohm_m / (1.0 - lost)


def _check_range(what: str, ratios: dict[str, float], ranges: dict[str, tuple[float, float]]) -> None:
    for key, value in ratios.items():
        low, high = ranges[key]
        if not low <= value <= high:
            warnings.warn(f"{what}: {key} = {value:.3g} lies outside Sakurai–Tamaru's fitted range "
                          f"[{low:g}, {high:g}]; the capacitance is extrapolated", FormulaRangeWarning, stacklevel=3)


def ground_capacitance_per_m(width_m: float, thickness_m: float, height_m: float, eps_r: float) -> float:
    """Capacitance [F/m] of a line to the ground plane below it (Sakurai–Tamaru)."""
    h = positive_scalar("height_m", height_m)
    w, t = positive_scalar("width_m", width_m) / h, positive_scalar("thickness_m", thickness_m) / h
    _check_range("ground capacitance", {"w/h": w, "t/h": t}, _GROUND_RANGE)
    return eps_r * EPSILON_0_F_PER_M * (1.15 * w + 2.80 * t**0.222)


def coupling_capacitance_per_m(width_m: float, thickness_m: float, height_m: float, spacing_m: float,
                               eps_r: float) -> float:
    """Capacitance [F/m] of a line to one neighbour at edge spacing spacing_m (Sakurai–Tamaru)."""
    h = positive_scalar("height_m", height_m)
    w, t = positive_scalar("width_m", width_m) / h, positive_scalar("thickness_m", thickness_m) / h
    s = positive_scalar("spacing_m", spacing_m) / h
    _check_range("coupling capacitance", {"w/h": w, "t/h": t, "s/h": s}, _COUPLE_RANGE)
    return eps_r * EPSILON_0_F_PER_M * (0.03 * w + 0.83 * t - 0.07 * t**0.222) * s**-1.34


def wire_segment(width_m: float, thickness_m: float, length_m: float, height_m: float, *,
                 spacing_m: float | None = None, eps_r: float = 3.9, barrier_m: float = 0.0,
                 metal: Metal = COPPER, grain_size_m: float | None = None, fs_c: float = 1.0,
                 resistivity_ohm_m: float | None = None) -> WireSegment:
    """Resistance and capacitance of one segment of a line from its geometry [m].

    length_m: the segment (the cell pitch along the line); height_m: dielectric thickness to the
    ground plane; spacing_m: edge-to-edge distance to the neighbouring lines (None: no
    neighbours); eps_r: the dielectric's relative permittivity (3.9: SiO2); barrier_m: barrier
    thickness on the walls and bottom; resistivity_ohm_m: a measured or tabulated resistivity
    that already includes the size effect (then metal, grain_size_m and fs_c are unused).
    """
    w, t = positive_scalar("width_m", width_m), positive_scalar("thickness_m", thickness_m)
    length, h = positive_scalar("length_m", length_m), positive_scalar("height_m", height_m)
    eps = positive_scalar("eps_r", eps_r)
    barrier = float(finite_array("barrier_m", barrier_m, shape=(), nonnegative=True))
    if resistivity_ohm_m is None:
        rho = size_effect_resistivity(w, t, metal, grain_size_m=grain_size_m, fs_c=fs_c)
    else:
        rho = positive_scalar("resistivity_ohm_m", resistivity_ohm_m)
    rho = barrier_resistivity(rho, w, t, barrier)
    c_couple = 0.0
    if spacing_m is not None:
        c_couple = coupling_capacitance_per_m(w, t, h, positive_scalar("spacing_m", spacing_m), eps) * length
    return WireSegment(r_segment_ohm=rho * length / (w * t),
                       c_ground_f=ground_capacitance_per_m(w, t, h, eps) * length,
                       c_couple_f=c_couple, length_m=length, resistivity_ohm_m=rho, source="geometry")


# NeuroSim (DNN_NeuroSim_V1.4, Inference_pytorch/NeuroSIM/Param.cpp): node [nm] -> wire width
# [nm], aspect ratio t/w, tabulated resistivity with the size effect [Ω·m], barrier [nm]
NEUROSIM_NODES = {
    130: (175, 1.6, 2.01e-8, 10.0), 90: (110, 1.6, 2.20e-8, 10.0), 65: (105, 1.7, 2.21e-8, 7.0),
    45: (80, 1.7, 2.37e-8, 5.0), 32: (56, 1.8, 2.63e-8, 4.0), 22: (40, 1.9, 2.97e-8, 2.5),
    14: (32, 2.0, 3.25e-8, 2.5), 10: (22, 2.0, 3.95e-8, 2.0), 7: (20, 2.0, 4.17e-8, 2.0),
    5: (15, 2.0, 4.98e-8, 2.0), 3: (12, 2.0, 5.8e-8, 1.5), 2: (10, 2.0, 6.61e-8, 0.5),
    1: (8, 3.0, 7.87e-8, 0.2),
}
# IMAC-Sim's default stack (iCAS-Lab/IMAC-Sim testIMAC.py, 9 nm node): metal width 3F, thickness
# 22 nm, 20 nm to the layer below, bit cell 15F along the I± (column) lines and 12F along the
# input (row) lines, I+ and I- lines 5F apart, ε = 20·ε0, ρ0 = 1.9e-8 Ω·m, its scattering figures
IMAC_F_M = 9e-9
IMAC_METAL = Metal(rho_bulk_ohm_m=1.9e-8, mean_free_path_m=39e-9, specularity=0.25, reflection=0.3)
IMAC_STACK = {"width_m": 3 * IMAC_F_M, "thickness_m": 22e-9, "height_m": 20e-9, "eps_r": 20.0}
# line -> (segment length [m], edge spacing to the neighbour [m]; None: the next input line, one
# cell pitch (the segment length) away centre to centre)
IMAC_LINES = {"row": (12 * IMAC_F_M, None), "col": (15 * IMAC_F_M, 5 * IMAC_F_M)}

PRESETS = tuple([f"neurosim-{node}nm" for node in NEUROSIM_NODES] + ["imac-sim-row", "imac-sim-col"])


def preset(name: str, *, cell_pitch_m: float | None = None) -> WireSegment:
    """Wire segment of a published tool's technology point (PRESETS lists the names).

    "neurosim-<node>nm": NeuroSim's tabulated resistivity with its barrier correction, a segment
    of cell_pitch_m (default 2F, the 4F² cross-point cell of NeuroSim's Param.cpp, F = the wire
    width) and NeuroSim's 0.2 fF/µm, all to ground. "imac-sim-row" / "imac-sim-col": IMAC-Sim's
    default stack (input lines / I± lines) through wire_segment, its size-effect resistivity and
    the Sakurai–Tamaru capacitances IMAC-Sim writes (cell_pitch_m overrides the segment length).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown wire preset {name!r}; choose one of {', '.join(PRESETS)}")
    if name.startswith("imac-sim-"):
        length, spacing = IMAC_LINES[name.removeprefix("imac-sim-")]
        if cell_pitch_m is not None:
            length = positive_scalar("cell_pitch_m", cell_pitch_m)
        spacing = length - IMAC_STACK["width_m"] if spacing is None else spacing
        seg = wire_segment(**IMAC_STACK, length_m=length, spacing_m=spacing, metal=IMAC_METAL)
        return WireSegment(seg.r_segment_ohm, seg.c_ground_f, seg.c_couple_f, seg.length_m, seg.resistivity_ohm_m,
                           source=f"IMAC-Sim testIMAC.py/mapLayer.py defaults ({name})")
    node = int(name.removeprefix("neurosim-").removesuffix("nm"))
    width_nm, aspect, rho_table, barrier_nm = NEUROSIM_NODES[node]
    w, t = width_nm * 1e-9, aspect * width_nm * 1e-9
    length = 2 * w if cell_pitch_m is None else positive_scalar("cell_pitch_m", cell_pitch_m)
    rho = barrier_resistivity(rho_table, w, t, barrier_nm * 1e-9)
    return WireSegment(r_segment_ohm=rho * length / (w * t), c_ground_f=NEUROSIM_C_F_PER_M * length, c_couple_f=0.0,
                       length_m=length, resistivity_ohm_m=rho, source=f"NeuroSim V1.4 Param.cpp ({node} nm)")
