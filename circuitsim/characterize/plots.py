"""Figures of the characterization protocols (circuitsim.characterize.protocols), one per protocol.

Each function takes a Characterization's figures and waveforms dicts and returns a
matplotlib Figure built without pyplot (see circuitsim.plots); `plot(result)` picks the
protocol's function and circuitsim.plots.save writes it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from circuitsim.plots import new_figure


def _panels(n: int, title: str, width_in: float = 4.2, height_in: float = 3.4):
    fig = new_figure(width_in * n, height_in)
    fig.suptitle(title)
    return fig, fig.subplots(1, n, squeeze=False)[0]


def loop(figures: dict, waves: dict, title: str = "DC I-V loop") -> Figure:
    """|I| against V on a log scale, with the extracted V_set and V_reset marked."""
    fig, (ax,) = _panels(1, title)
    ax.semilogy(waves["voltage_v"], np.abs(waves["current_a"]) + 1e-15, lw=1)
    for name, color in (("v_set_v", "C2"), ("v_reset_v", "C3")):
        if np.isfinite(figures[name]):
            ax.axvline(figures[name], color=color, ls="--", label=f"{name[:-2]} = {figures[name]:.3g} V")
    ax.set_xlabel("voltage [V]")
    ax.set_ylabel("|current| [A]")
    ax.set_title(f"R_on = {figures['r_on_ohm']:.3g} Ω, R_off = {figures['r_off_ohm']:.3g} Ω", fontsize="small")
    ax.legend(fontsize="small")
    return fig


def pulse(figures: dict, waves: dict, title: str = "Pulse SET/RESET") -> Figure:
    """R after one pulse against amplitude (one line per width), and switching time vs amplitude."""
    fig, axes = _panels(3, title, width_in=3.6)
    for ax, kind in zip(axes[:2], ("set", "reset")):
        for k, w in enumerate(figures["widths_s"]):
            ax.semilogy(figures[f"{kind}_v"], figures[f"r_after_{kind}_ohm"][:, k], marker="o", label=f"{w:.2g} s")
        ax.set_xlabel(f"{kind.upper()} amplitude [V]")
        ax.set_ylabel("R after the pulse [Ω]")
        ax.legend(title="width", fontsize="small")
    for kind in ("set", "reset"):
        axes[2].semilogy(figures[f"{kind}_v"], figures[f"t_switch_{kind}_s"], marker="o", label=kind.upper())
    axes[2].set_xlabel("amplitude [V]")
    axes[2].set_ylabel("switching time [s]")
    axes[2].legend(fontsize="small")
    return fig


def ptdp(figures: dict, waves: dict, title: str = "Potentiation / depression") -> Figure:
    """Conductance after each pulse, with the nonlinearity and asymmetry figures."""
    fig, (ax,) = _panels(1, title)
    g = figures["conductance_s"]
    ax.plot(np.arange(len(g)), g * 1e3, marker=".")
    ax.set_xlabel("pulse number")
    ax.set_ylabel("conductance [mS]")
    ax.set_title(f"NL_P = {figures['nl_potentiation']:.2f}, NL_D = {figures['nl_depression']:.2f}, "
                 f"ANL = {figures['asymmetry']:.2f}, G_max/G_min = {figures['dynamic_range']:.3g}", fontsize="small")
    return fig


def variability(figures: dict, waves: dict, title: str = "Variability") -> Figure:
    """Cumulative distributions of R_on, R_off and of V_set, V_reset over devices × cycles."""
    fig, axes = _panels(2, title)
    for ax, names, unit in ((axes[0], ("r_on_ohm", "r_off_ohm"), "Ω"), (axes[1], ("v_set_v", "v_reset_v"), "V")):
        for name in names:
            x = np.sort(np.ravel(figures[name])[np.isfinite(np.ravel(figures[name]))])
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=name.rsplit("_", 1)[0])
        ax.set_xlabel(f"value [{unit}]")
        ax.set_ylabel("cumulative fraction")
        ax.legend(fontsize="small")
    axes[0].set_xscale("log")
    return fig


def read(figures: dict, waves: dict, title: str = "Repeated reads") -> Figure:
    """R of every read in LRS and HRS (disturb as the trend, noise as the scatter)."""
    fig, (ax,) = _panels(1, title)
    for state in ("lrs", "hrs"):
        r = figures[f"r_{state}_reads_ohm"]
        ax.semilogy(np.arange(len(r)), r, marker=".", lw=0.8,
                    label=f"{state.upper()}: disturb {figures[f'disturb_{state}']:.2e}, "
                          f"noise {figures[f'noise_{state}']:.2e}")
    ax.set_xlabel("read number")
    ax.set_ylabel("R [Ω]")
    ax.legend(fontsize="small")
    return fig


def temperature(figures: dict, waves: dict, title: str = "Temperature") -> Figure:
    """The loops at each temperature, and V_set, V_reset against temperature."""
    fig, axes = _panels(2, title)
    for k, t in enumerate(figures["temperatures_k"]):
        axes[0].semilogy(waves["voltage_v"][:, k], np.abs(waves["current_a"][:, k]) + 1e-15, lw=1, label=f"{t:g} K")
    axes[0].set_xlabel("voltage [V]")
    axes[0].set_ylabel("|current| [A]")
    axes[0].legend(fontsize="small")
    for name in ("v_set_v", "v_reset_v"):
        axes[1].plot(figures["temperatures_k"], figures[name], marker="o", label=name[:-2])
    axes[1].set_xlabel("temperature [K]")
    axes[1].set_ylabel("switching voltage [V]")
    axes[1].legend(fontsize="small")
    return fig


def _window_plot(x, figures: dict, lo: str, hi: str, xlabel: str, title: str, marker: str) -> Figure:
    fig, (ax,) = _panels(1, title)
    ax.loglog(x, figures[lo], marker="o", label="LRS")
    ax.loglog(x, figures[hi], marker="o", label="HRS")
    if np.isfinite(figures[marker]):
        ax.axvline(figures[marker], color="grey", ls="--", label=f"{marker} = {figures[marker]:.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("R [Ω]")
    ax.legend(fontsize="small")
    return fig


def retention(figures: dict, waves: dict, title: str = "Retention") -> Figure:
    """R_LRS and R_HRS against rest time, with the retention time marked."""
    return _window_plot(figures["times_s"], figures, "r_lrs_ohm", "r_hrs_ohm", "time at rest [s]", title,
                        "retention_time_s")


def endurance(figures: dict, waves: dict, title: str = "Endurance") -> Figure:
    """R_on and R_off against cycles, with the cycles to failure marked."""
    return _window_plot(figures["cycles"], figures, "r_on_ohm", "r_off_ohm", "cycles", title, "cycles_to_failure")


PLOTS = {"loop": loop, "pulse": pulse, "ptdp": ptdp, "variability": variability, "read": read,
         "temperature": temperature, "retention": retention, "endurance": endurance}


def plot(result) -> Figure:
    """The figure of a circuitsim.characterize.Characterization."""
    return PLOTS[result.protocol](result.figures, result.waveforms,
                                  f"{result.model}: {result.protocol} ({result.engine})")
