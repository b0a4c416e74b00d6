"""Matplotlib figures: IR-drop maps, read-margin curves, accuracy plots, parity plots, read settling,
latency sweeps and read-energy splits.

Figures are built on matplotlib.figure.Figure and rendered by the Agg canvas, never
through pyplot, so nothing here opens a window or touches global plotting state.
Each function returns a Figure; `save` writes it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from circuitsim.analysis import IRDrop, ReadLatency, ReadPulseEnergy
from circuitsim.pulse_mvm import PulseMVM, WritePulse


class InlineFigure(Figure):
    """A Figure that Jupyter shows as a picture: built without pyplot, it has no inline backend
    to render it, so it renders itself (IPython calls _repr_png_)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()


def new_figure(width_in: float = 5.0, height_in: float = 3.6) -> InlineFigure:
    """An empty figure on the Agg canvas (no window, no global pyplot state)."""
    fig = InlineFigure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write the figure (format from the suffix, e.g. .png) and return its path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def ir_drop_map(drop: IRDrop, title: str = "IR drop") -> Figure:
    """Relative voltage lost to the wires at every cell, in % of the ideal cell voltage."""
    fig = new_figure()
    ax = fig.add_subplot()
    image = ax.imshow(100 * drop.relative, cmap="magma", origin="upper", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="voltage lost to wires [% of ideal]")
    ax.set_xlabel("column (sense amplifier at the bottom)")
    ax.set_ylabel("row (driver at the left)")
    ax.set_title(title)
    return fig


def read_margin_curve(sizes, margins: dict[str, np.ndarray], title: str = "Worst-case read margin") -> Figure:
    """Read margin (I_on − I_off)/I_on against array size n (n×n), one line per label."""
    fig = new_figure()
    ax = fig.add_subplot()
    for label, values in margins.items():
        ax.plot(sizes, 100 * np.asarray(values), marker="o", label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.set_xlabel("array size n (n×n)")
    ax.set_ylabel("read margin [%]")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def accuracy_sweeps(panels: list[tuple[str, np.ndarray, np.ndarray]], references: dict[str, float],
                    title: str = "Test accuracy") -> Figure:
    """One panel per swept parameter: (x label, values, accuracies); references are horizontal lines."""
    fig = new_figure(4.0 * len(panels), 3.4)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (label, values, acc) in zip(axes, panels):
        ax.plot(values, 100 * np.asarray(acc), marker="o", color="C0", label="crossbar")
        for k, (name, value) in enumerate(references.items()):
            ax.axhline(100 * value, ls="--", lw=1, color=f"C{k + 1}", label=name)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy [%]")
    axes[-1].legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    return fig


def parity(reference: np.ndarray, other: np.ndarray, reference_label: str, other_label: str,
           title: str = "Parity", unit: str = "A") -> Figure:
    """Scatter of other against reference with the y = x line; the title gives the largest
    difference relative to the largest |reference|."""
    ref, oth = np.ravel(reference), np.ravel(other)
    rel = np.abs(oth - ref).max() / np.abs(ref).max()
    fig = new_figure(4.2, 4.0)
    ax = fig.add_subplot()
    lo, hi = min(ref.min(), oth.min()), max(ref.max(), oth.max())
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax.scatter(ref, oth, s=10)
    ax.set_xlabel(reference_label)
    ax.set_ylabel(other_label)
    for axis in (ax.xaxis, ax.yaxis):  # SI prefixes (120 µA), not 0.00012
        axis.set_major_formatter(EngFormatter(unit=unit))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_title(f"{title}\nmax |Δ| / max |ref| = {rel:.1e}")
    ax.set_aspect("equal")
    return fig


def calibration_parity(calibration, form: str | None = None) -> Figure:
    """Held-out surrogate vs SPICE column currents of a surrogate Calibration (default: its chosen form)."""
    form = form or calibration.form
    held = calibration.heldout
    return parity(held["spice_a"], held[f"{form}_a"], "SPICE", f"surrogate ({form})",
                  title=f"Held-out column currents, {len(held['rows'])} designs")


def read_settling(latency: ReadLatency, columns: int = 8, title: str = "Column currents after a read step") -> Figure:
    """Column currents over time relative to their DC values (a few columns, the slowest included),
    the tolerance band and each shown column's settling time."""
    fig = new_figure()
    ax = fig.add_subplot()
    order = np.argsort(latency.settling_s)
    shown = np.unique(order[np.linspace(0, len(order) - 1, min(columns, len(order))).astype(int)])
    for k, j in enumerate(shown):
        error = (latency.column_currents[:, j] - latency.dc_currents_a[j]) / latency.full_scale_a
        ax.plot(latency.time_s, error, color=f"C{k % 10}", lw=1, label=f"column {j}")
        ax.axvline(latency.settling_s[j], color=f"C{k % 10}", ls=":", lw=0.8)
    band = latency.tolerance
    ax.axhspan(-band, band, color="grey", alpha=0.25, label=f"±{band:.2g} of full scale")
    ax.set_yscale("symlog", linthresh=band)
    ax.xaxis.set_major_formatter(EngFormatter(unit="s"))
    ax.set_xlabel("time from the start of the read edge")
    ax.set_ylabel("(I − I_DC) / full scale")
    ax.set_title(f"{title}\nlatency {latency.latency_s * 1e9:.3g} ns ({latency.engine})")
    ax.legend(fontsize="x-small", ncol=2)
    return fig


def latency_sweep(x, latencies_s: dict[str, np.ndarray], xlabel: str, title: str = "Read latency") -> Figure:
    """Read latency against a swept quantity (array size, wire RC, driver resistance), one line per label."""
    fig = new_figure()
    ax = fig.add_subplot()
    for label, values in latencies_s.items():
        ax.plot(x, values, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(EngFormatter(unit="s"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("read latency")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def read_energy_split(labels: list[str], energies: list[ReadPulseEnergy], title: str = "Energy of one read") -> Figure:
    """Stacked bars of the static (DC currents) and dynamic (line charging) parts of each read's energy."""
    fig = new_figure()
    ax = fig.add_subplot()
    static = np.array([e.static_j for e in energies])
    dynamic = np.array([e.dynamic_j for e in energies])
    ax.bar(labels, static, label="static (DC currents)", color="C0")
    ax.bar(labels, dynamic, bottom=static, label="dynamic (line charging)", color="C1")
    ax.yaxis.set_major_formatter(EngFormatter(unit="J"))
    ax.set_ylabel("energy per read")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def pulse_mvm(mvm: PulseMVM, title: str = "Pulse-coded MVM") -> Figure:
    """Left: each column's sense current over time, read windows dotted; right: each column's
    dynamic error (transient − DC) in % of full scale, the error against the ideal G·V in the title."""
    fig = new_figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    left.plot(mvm.time_s, mvm.column_currents, lw=1)
    for end in mvm.windows_s[:, 1]:
        left.axvline(end, color="grey", ls=":", lw=0.8)
    left.xaxis.set_major_formatter(EngFormatter(unit="s"))
    left.yaxis.set_major_formatter(EngFormatter(unit="A"))
    left.set_xlabel("time")
    left.set_ylabel("column current")
    left.set_title(f"{mvm.encoding}, {mvm.engine}: sense currents")
    columns = np.arange(len(mvm.decoded))
    right.bar(columns, 100 * mvm.error_vs_dc, color="C0")
    right.axhline(0, color="grey", lw=0.8)
    right.set_xlabel("column")
    right.set_ylabel("transient − DC [% of full scale]")
    worst_ideal = np.abs(mvm.error_vs_ideal).max()
    right.set_title(f"dynamic error (vs ideal G·V: up to {100 * worst_ideal:.3g} %)")
    fig.suptitle(title)
    return fig


def write_pulse(wp: WritePulse, title: str = "Write pulse through the lines") -> Figure:
    """The applied pulse and the voltage reaching each target cell, with the threshold; the
    legend gives each cell's peak, delay and time above threshold."""
    fig = new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    ax.plot(wp.time_s, wp.applied_v, color="k", lw=1.2, label=f"applied (width {wp.applied_width_s * 1e9:.3g} ns)")
    for k, (i, j) in enumerate(wp.cells):
        ax.plot(wp.time_s, wp.cell_voltages[:, k], lw=1.2,
                label=f"cell ({i}, {j}): peak {wp.peak_v[k]:.3g} V, delay {wp.delay_s[k] * 1e9:.3g} ns, "
                      f"above {wp.width_s[k] * 1e9:.3g} ns")
    ax.axhline(wp.threshold_v, color="grey", ls="--", lw=0.8, label=f"threshold {wp.threshold_v:g} V")
    ax.xaxis.set_major_formatter(EngFormatter(unit="s"))
    ax.set_xlabel("time")
    ax.set_ylabel("cell voltage [V]")
    ax.set_title(f"{title} ({wp.scheme}, {wp.engine})")
    ax.legend(fontsize="x-small")
    return fig
