"""Figures of programmed arrays and networks (circuitsim.programming): achieved against target,
error per level, pulses per cell, accuracy against time after programming.

Built without pyplot (see circuitsim.plots); circuitsim.plots.save writes them. Only the edge
(demo, cli) imports this module.
"""
from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from circuitsim.programming.network import ProgrammedNetwork


def _panels(n: int, title: str, width_in: float = 4.2, height_in: float = 3.4):
    fig = Figure(figsize=(width_in * n, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    return fig, fig.subplots(1, n, squeeze=False)[0]


def programming_summary(programmed: ProgrammedNetwork, title: str = "Write-verify of every tile") -> Figure:
    """Achieved against target conductance, the error histogram per level, and pulses per cell."""
    results = [t.result for t in programmed.all_tiles()]
    target = np.concatenate([r.target_s.ravel() for r in results])
    achieved = np.concatenate([r.conductance_s.ravel() for r in results])
    failed = np.concatenate([r.failed.ravel() for r in results])
    fig, (ax_g, ax_e, ax_p) = _panels(3, title)
    ax_g.scatter(1e6 * target[~failed], 1e6 * achieved[~failed], s=4, alpha=0.5, label="converged")
    if failed.any():
        ax_g.scatter(1e6 * target[failed], 1e6 * achieved[failed], s=10, marker="x", color="C3", label="failed")
    span = 1e6 * np.array([target.min(), target.max()])
    tol = programmed.write_verify.tolerance
    ax_g.plot(span, span, "k-", lw=0.8)
    ax_g.fill_between(span, span * (1 - tol), span * (1 + tol), color="0.85", label=f"±{tol:.0%} band")
    ax_g.set_xlabel("target [µS]")
    ax_g.set_ylabel("achieved (read after the whole tile) [µS]")
    ax_g.legend(fontsize="small")
    per_level = programmed.error_per_level()
    bins = np.linspace(-2 * tol, 2 * tol, 41)
    for k, (level, errors) in enumerate(per_level.items()):
        ax_e.hist(100 * errors, bins=100 * bins, histtype="step", color=f"C{k % 10}", label=f"{1e6 * level:.0f} µS")
    ax_e.axvspan(-100 * tol, 100 * tol, color="0.9", zorder=0)
    ax_e.set_xlabel("programming error [%]")
    ax_e.set_ylabel("cells")
    ax_e.legend(fontsize="x-small", ncol=2, title="level")
    pulses = np.concatenate([r.pulses.ravel() for r in results])
    ax_p.hist(pulses, bins=np.arange(pulses.max() + 2) - 0.5)
    ax_p.set_xlabel("pulses per cell")
    ax_p.set_ylabel("cells")
    s = programmed.summary
    ax_p.set_title(f"{s['pulses']} pulses, {1e9 * s['energy_j']:.1f} nJ, {1e3 * s['time_s']:.2f} ms", fontsize="small")
    return fig


def accuracy_vs_time(tables: dict[str, dict], reference: dict[str, float],
                     title: str = "Digits MLP accuracy after programming") -> Figure:
    """Test accuracy against time after programming: tables {name: network.accuracy_over_time's
    table} (e.g. one weight per pair, bit-sliced), one colour per name and temperature, one line
    style per compensation; reference: horizontal lines {label: accuracy}."""
    fig, (ax,) = _panels(1, title, width_in=6.5, height_in=4.2)
    styles = {"None": "-", "global": "--", "column": ":"}
    colour = 0
    for name, table in tables.items():
        for a, temp in enumerate(table["temperatures_k"]):
            for b, comp in enumerate(table["compensations"]):
                label = f"{name}, {temp:.0f} K, " + ("no compensation" if comp == "None" else f"{comp} compensation")
                ax.semilogx(table["times_s"], 100 * table["accuracy"][a, b], styles.get(comp, "-"), marker="o",
                            ms=3, color=f"C{colour % 10}", label=label)
            colour += 1
    for k, (label, acc) in enumerate(reference.items()):
        ax.axhline(100 * acc, color="0.5", lw=0.8, ls=("-", "--", ":", "-.")[k % 4], label=label)
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy [%]")
    ax.legend(fontsize="xx-small")
    return fig


def fault_study(study: dict, title: str = "Digits MLP with stuck-at cells") -> Figure:
    """Test accuracy right after programming against the stuck-at rate, one line per mapping
    (network.fault_study's table)."""
    fig, (ax,) = _panels(1, title, width_in=5.5, height_in=4.0)
    for a, name in enumerate(study["mappings"]):
        ax.plot(100 * study["stuck_rates"], 100 * study["accuracy"][a], marker="o", color=f"C{a}", label=name)
    ax.set_xlabel("stuck-at cells [%] (half ON, half OFF)")
    ax.set_ylabel("test accuracy [%]")
    ax.legend(fontsize="small")
    return fig
