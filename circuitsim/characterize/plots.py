"""Figures of the characterization protocols (circuitsim.characterize.protocols), one per
protocol, and of a fit (circuitsim.characterize.fit).

Each protocol function takes a Characterization's figures and waveforms dicts and returns a
matplotlib Figure built without pyplot (see circuitsim.plots); `plot(result)` picks the
protocol's function, titles it with the run's conditions and circuitsim.plots.save writes it.
Axes carry SI prefixes (EngFormatter); log |I| axes stop at the measurement floor, as an
instrument's would, instead of falling to the ~0 A of the 0 V crossing.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, NullFormatter

from circuitsim.characterize.extract import NL_LIMIT
from circuitsim.plots import new_figure

FLOOR_A = 1e-12  # [A] a lab's measurement floor (a parameter analyzer's lowest range)
DECADES = 5  # log |I| axes show at most this many decades below the largest current
LOG_RANGE = 10.0  # a conductance series spanning more than this ratio is shown on a log axis


def _panels(n: int, title: str, width_in: float = 4.4, height_in: float = 3.6):
    fig = new_figure(width_in * n, height_in)
    fig.suptitle(title, fontsize="medium")
    return fig, fig.subplots(1, n, squeeze=False)[0]


def _si(axis, unit: str, ticks=None) -> None:
    """Tick labels with SI prefixes (1 µA, 10 kΩ, 100 ns) on the major ticks (or on `ticks`); minor
    ticks stay unlabelled, where log axes would print 2×10⁻⁴ style labels over each other."""
    axis.set_major_formatter(EngFormatter(unit=unit))
    axis.set_minor_formatter(NullFormatter())
    if ticks is not None:
        axis.set_ticks(ticks)


def eng(value: float, unit: str) -> str:
    """value with an SI prefix and 3 significant digits: 1.69 V, 218 kΩ, 15 ns."""
    if not np.isfinite(value) or value == 0:
        return f"{value:g} {unit}"
    exponent = int(np.clip(3 * np.floor(np.log10(abs(value)) / 3), -15, 12))
    prefix = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}[exponent]
    return f"{value / 10.0**exponent:.3g} {prefix}{unit}"


def _volts(axis, label: str = "voltage [V]") -> None:
    """Voltage axes stay in plain volts (−2 … 2): prefixed ticks would crowd each other."""
    axis.set_label_text(label)


def floor_a(current_a) -> float:
    """Where a log |I| axis stops: the measurement floor, or DECADES below the largest current."""
    return max(FLOOR_A, float(np.max(np.abs(current_a))) * 10.0**-DECADES)


def _log_current(ax, v, i, floor: float, **style) -> None:
    """|I| on a log axis, samples below the floor left out (not drawn at 1e-15 A)."""
    i = np.where(np.abs(i) >= floor, np.abs(i), np.nan)
    ax.semilogy(v, i, **style)
    ax.set_ylim(bottom=floor)
    _si(ax.yaxis, "A")
    ax.set_ylabel(f"|current| (floor {eng(floor, 'A')})")


def _nl_text(value: float) -> str:
    """NeuroSim nonlinearity; at the search bound ±NL_LIMIT it is a bound, and says so."""
    return (f"≥ {NL_LIMIT:g} (bound)" if value >= NL_LIMIT else f"≤ −{NL_LIMIT:g} (bound)" if value <= -NL_LIMIT
            else f"{value:.2f}")


def loop(figures: dict, waves: dict, title: str = "DC I-V loop") -> Figure:
    """|I| against V on a log scale, with the extracted V_set and V_reset marked."""
    fig, (ax,) = _panels(1, title, width_in=5.2)
    _log_current(ax, waves["voltage_v"], waves["current_a"], floor_a(waves["current_a"]), lw=1)
    for name, color in (("v_set_v", "C2"), ("v_reset_v", "C3")):
        if np.isfinite(figures[name]):
            ax.axvline(figures[name], color=color, ls="--", label=f"{name[:-2]} = {eng(figures[name], 'V')}")
    ax.plot([], [], " ", label=f"R_on = {eng(figures['r_on_ohm'], 'Ω')}, R_off = {eng(figures['r_off_ohm'], 'Ω')}")
    _volts(ax.xaxis)
    ax.legend(fontsize="small")
    return fig


def pulse(figures: dict, waves: dict, title: str = "Pulse SET/RESET") -> Figure:
    """R after one pulse against amplitude (one line per width), and switching time vs amplitude."""
    fig, axes = _panels(3, title, width_in=3.8)
    for ax, kind in zip(axes[:2], ("set", "reset")):
        for k, w in enumerate(figures["widths_s"]):
            ax.semilogy(figures[f"{kind}_v"], figures[f"r_after_{kind}_ohm"][:, k], marker="o",
                        label=eng(w, "s"))
        _volts(ax.xaxis, f"{kind.upper()} amplitude [V]")
        ax.set_ylabel("R after the pulse")
        _si(ax.yaxis, "Ω")
        ax.legend(title="width", fontsize="small")
    for kind in ("set", "reset"):
        axes[2].semilogy(figures[f"{kind}_v"], figures[f"t_switch_{kind}_s"], marker="o", label=kind.upper())
    _volts(axes[2].xaxis, "amplitude [V]")
    axes[2].set_ylabel("switching time")
    _si(axes[2].yaxis, "s")
    axes[2].legend(fontsize="small")
    return fig


def ptdp(figures: dict, waves: dict, title: str = "Potentiation / depression") -> Figure:
    """Conductance after each pulse (log axis when it spans more than LOG_RANGE), with the
    nonlinearity and asymmetry figures in the legend."""
    fig, (ax,) = _panels(1, title, width_in=7.6, height_in=3.8)
    g = figures["conductance_s"]
    (ax.semilogy if g.max() / g.min() > LOG_RANGE else ax.plot)(np.arange(len(g)), g, marker=".",
                                                                label="read after each pulse")
    _si(ax.yaxis, "S")
    ax.set_xlabel("pulse number")
    ax.set_ylabel("conductance")
    for line in (f"NL_P = {_nl_text(figures['nl_potentiation'])}, NL_D = {_nl_text(figures['nl_depression'])}",
                 f"ANL = {figures['asymmetry']:.2f}, G_max/G_min = {figures['dynamic_range']:.3g}"):
        ax.plot([], [], " ", label=line)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # beside the curve, never on it
    return fig


def variability(figures: dict, waves: dict, title: str = "Variability") -> Figure:
    """Cumulative distributions of R_on, R_off and of V_set, V_reset over devices × cycles."""
    fig, axes = _panels(2, title)
    for ax, names, unit in ((axes[0], ("r_on_ohm", "r_off_ohm"), "Ω"), (axes[1], ("v_set_v", "v_reset_v"), "V")):
        for name in names:
            x = np.sort(np.ravel(figures[name])[np.isfinite(np.ravel(figures[name]))])
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=name.rsplit("_", 1)[0])
        if unit == "Ω":
            ax.set_xlabel("resistance")
        else:
            _volts(ax.xaxis, "switching voltage [V]")
        ax.set_ylabel("cumulative fraction")
        ax.legend(fontsize="small")
    axes[0].set_xscale("log")
    _si(axes[0].xaxis, "Ω")
    return fig


def read(figures: dict, waves: dict, title: str = "Repeated reads") -> Figure:
    """R of every read in LRS and HRS (disturb as the trend, noise as the scatter)."""
    fig, (ax,) = _panels(1, title, width_in=5.6)
    for state in ("lrs", "hrs"):
        r = figures[f"r_{state}_reads_ohm"]
        ax.semilogy(np.arange(len(r)), r, marker=".", lw=0.8,
                    label=f"{state.upper()}: disturb {figures[f'disturb_{state}']:.2e}, "
                          f"noise {figures[f'noise_{state}']:.2e}")
    ax.set_xlabel("read number")
    ax.set_ylabel("R")
    _si(ax.yaxis, "Ω")
    ax.legend(fontsize="small")
    return fig


def temperature(figures: dict, waves: dict, title: str = "Temperature") -> Figure:
    """The loops at each temperature, and V_set, V_reset against temperature."""
    fig, axes = _panels(2, title)
    floor = floor_a(waves["current_a"])
    for k, t in enumerate(figures["temperatures_k"]):
        _log_current(axes[0], waves["voltage_v"][:, k], waves["current_a"][:, k], floor, lw=1, label=f"{t:g} K")
    _volts(axes[0].xaxis)
    axes[0].legend(fontsize="small", title="temperature")
    for name in ("v_set_v", "v_reset_v"):
        axes[1].plot(figures["temperatures_k"], figures[name], marker="o", label=name[:-2])
    axes[1].set_xlabel("temperature [K]")
    axes[1].set_ylabel("switching voltage [V]")
    axes[1].legend(fontsize="small")
    return fig


def _window_plot(x, figures: dict, lo: str, hi: str, xlabel: str, x_unit: str, title: str, marker: str) -> Figure:
    fig, (ax,) = _panels(1, title, width_in=5.2)
    ax.loglog(x, figures[lo], marker="o", label="LRS")
    ax.loglog(x, figures[hi], marker="o", label="HRS")
    if np.isfinite(figures[marker]):
        ax.axvline(figures[marker], color="grey", ls="--",
                   label=f"{marker.rsplit('_', 1)[0].replace('_', ' ')} = {eng(figures[marker], x_unit)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("R")
    _si(ax.yaxis, "Ω")
    if x_unit == "s":
        _si(ax.xaxis, "s")
    ax.legend(fontsize="small")
    return fig


def retention(figures: dict, waves: dict, title: str = "Retention") -> Figure:
    """R_LRS and R_HRS against rest time, with the retention time marked."""
    return _window_plot(figures["times_s"], figures, "r_lrs_ohm", "r_hrs_ohm", "time at rest", "s", title,
                        "retention_time_s")


def endurance(figures: dict, waves: dict, title: str = "Endurance") -> Figure:
    """R_on and R_off against cycles, with the cycles to failure marked."""
    return _window_plot(figures["cycles"], figures, "r_on_ohm", "r_off_ohm", "cycles", "", title,
                        "cycles_to_failure")


def mlc(figures: dict, waves: dict, title: str = "Multi-level cell by compliance") -> Figure:
    """R of each level (every cycle) against its compliance current, and the peak SET current."""
    fig, axes = _panels(2, title)
    levels = figures["compliance_a"]
    for c in range(figures["r_levels_ohm"].shape[1]):
        axes[0].loglog(levels, figures["r_levels_ohm"][:, c], marker="o", ls="-" if c == 0 else "none",
                       label=f"cycle {c + 1}")
    axes[0].set_xlabel("compliance current")
    axes[0].set_ylabel("R after SET")
    axes[0].plot([], [], " ", label=f"repeatability {figures['repeatability']:.1e}")
    axes[1].loglog(levels, figures["peak_set_current_a"], marker="o", label="peak SET current")
    axes[1].loglog(levels, levels, "k--", lw=0.8, label="= compliance")
    axes[1].set_xlabel("compliance current")
    axes[1].set_ylabel("peak SET current")
    if np.all(np.isfinite(figures["gate_v"])):
        for level, gate in zip(levels, figures["gate_v"]):
            axes[1].annotate(f"V_g {gate:.2f} V", (level, level), fontsize="x-small", textcoords="offset points",
                             xytext=(4, -10))
    for ax in axes:
        _si(ax.xaxis, "A", ticks=levels)
        ax.legend(fontsize="small")
    _si(axes[0].yaxis, "Ω")
    _si(axes[1].yaxis, "A", ticks=levels)
    return fig


PLOTS = {"loop": loop, "pulse": pulse, "ptdp": ptdp, "variability": variability, "read": read,
         "temperature": temperature, "retention": retention, "endurance": endurance, "mlc": mlc}


def conditions(settings: dict, protocol: str) -> str:
    """The conditions of a run, for its title: drive, read, compliance, temperature."""
    def eng_v(v):
        return eng(v, "V")

    def eng_s(t):
        return eng(t, "s")

    def eng_a(i):
        return eng(i, "A")

    parts = []
    if protocol in ("loop", "variability", "temperature"):
        parts.append(f"±{eng_v(settings['sweep_v'])} triangle, period {eng_s(settings['sweep_period_s'])}")
    if protocol == "ptdp":
        parts.append(f"{settings['train_pulses']}+{settings['train_pulses']} pulses of "
                     f"{eng_s(settings['train_width_s'])} at {eng_v(settings['train_set_v'])} / "
                     f"{eng_v(settings['train_reset_v'])}")
    parts.append(f"read {eng_v(settings['read_v'])}")
    if protocol == "temperature":
        parts.append("T = " + ", ".join(f"{t:g}" for t in settings["temperatures_k"]) + " K")
    elif protocol == "retention":
        parts.append(f"rest at {settings['retention_temperature_k']:g} K")
    if settings.get("gate_v", 0) > 0 and protocol != "mlc":
        parts.append(f"1T1R, V_g = {eng_v(settings['gate_v'])}")
    elif settings.get("gate_v", 0) > 0:
        parts.append("1T1R")
    elif settings.get("compliance_a", 0) > 0:
        parts.append(f"SMU compliance {eng_a(settings['compliance_a'])}")
    elif protocol == "mlc":
        parts.append("SMU compliance")
    return "; ".join(parts)


def plot(result) -> Figure:
    """The figure of a circuitsim.characterize.Characterization, titled with its conditions."""
    title = f"{result.model}: {result.protocol} ({result.engine})\n{conditions(result.settings, result.protocol)}"
    return PLOTS[result.protocol](result.figures, result.waveforms, title)


def fit_overlay(fits) -> Figure:
    """One row per measured file: measured and fitted |I| (against V for an I-V loop, against time
    for a pulse train), and the parity of |I| fitted vs measured."""
    rows = [(k, j, f) for k, result in enumerate(fits) for j, f in enumerate(result.figures)]
    fig = new_figure(10.0, 3.8 * len(rows))
    fig.suptitle(f"{fits[0].model} fitted to measured data" + (f" ({len(fits)} devices)" if len(fits) > 1 else ""),
                 fontsize="medium")
    axes = fig.subplots(len(rows), 2, squeeze=False, width_ratios=[1.6, 1.0])
    for (k, j, f), (ax, parity_ax) in zip(rows, axes):
        measured, fitted = f["current_measured_a"], f["current_fitted_a"]
        floor = floor_a(measured)
        loop_like = "switching_measured_v" in f
        x = f["voltage_v"] if loop_like else f["time_s"]
        _log_current(ax, x, measured, floor, ls="none", marker=".", ms=2, color="0.5", label="measured")
        _log_current(ax, x, fitted, floor, lw=1, color="C3", label="fitted twin")
        if loop_like:
            for v, color, name in zip(f["switching_measured_v"], ("C2", "C0"), ("V_set", "V_reset")):
                ax.axvline(v, color=color, ls=":", lw=1, label=f"measured {name} {eng(v, 'V')}")
        if loop_like:
            _volts(ax.xaxis)
        else:
            ax.set_xlabel("time")
            _si(ax.xaxis, "s")
        ax.set_title(f"device {k}, file {j}: {f['temperature_k']:g} K; rms ln|I| residual {f['rms_ln_i']:.3f}",
                     fontsize="small")
        ax.legend(fontsize="x-small")
        keep = np.abs(measured) > floor
        parity_ax.loglog(np.abs(measured[keep]), np.maximum(np.abs(fitted[keep]), floor), ".", ms=2)
        lim = [np.abs(measured[keep]).min(), np.abs(measured[keep]).max()]
        parity_ax.loglog(lim, lim, "k--", lw=0.8, label="fitted = measured")
        parity_ax.set_xlabel("measured |I|")
        parity_ax.set_ylabel("fitted |I|")
        _si(parity_ax.xaxis, "A")
        _si(parity_ax.yaxis, "A")
        parity_ax.legend(fontsize="x-small")
    return fig
