"""Small decks covering every branch of netlist.render, kept as files in tests/decks/: a change
to how decks are written must not change a byte of them (test_netlists.py).

Regenerate (only for an intended change of the deck format): python tests/golden_decks.py
"""
import re
from pathlib import Path

import numpy as np

import circuitsim
from circuitsim.circuit import make_drive
from circuitsim.devices import NmosAccess, SinhSelector
from circuitsim.devices.memristors import VTEAM
from circuitsim.netlist import render
from circuitsim.transient import Drive, transient_deck

DECKS = Path(__file__).resolve().parent / "decks"


def _edge_1r():
    """Open cells, zero-ohm segments, floating lines, driver and sense resistance, column bias."""
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 1e-4, (5, 6))
    g[1, 2] = g[3, 0] = 0.0
    r_row, r_col = rng.uniform(0.5, 5.0, (5, 6)), rng.uniform(0.5, 5.0, (5, 6))
    r_row[2, 3] = r_col[1, 4] = 0.0
    xb = circuitsim.Crossbar(conductance=g, r_row=r_row, r_col=r_col, r_driver=rng.uniform(0, 20, 5),
                             r_sense=rng.uniform(0, 20, 6))
    drive = make_drive(xb, rng.uniform(0.1, 1.0, 5), rng.uniform(0, 0.05, 6), None, [False, False, True, False, False],
                       [False, True, False, False, True, False])
    return render(drive.circuit, drive.fixed_volts[0])


def _dead_1s1r():
    """A floating row whose cells are all open: its nodes have no DC path and are left out."""
    g = np.full((4, 5), 5e-5)
    g[2] = 0.0
    xb = circuitsim.Crossbar(conductance=g, r_row=1.5, r_col=2.5, selector=SinhSelector())
    drive = make_drive(xb, [0.5, 0.6, 0.7, 0.8], None, None, [False, False, True, False], None)
    return render(drive.circuit, drive.fixed_volts[0])


def _gates_1t1r():
    xb = circuitsim.Crossbar(conductance=np.full((3, 4), 2e-5), r_row=2.0, r_col=2.0, transistor=NmosAccess())
    drive = make_drive(xb, [0.2, 0.3, 0.4], None, [1.8, 0.0, 1.8], None, None)
    return render(drive.circuit, drive.fixed_volts[0])


def _transient_cells():
    """A transient deck: waveform text per source and one stateful device per cell."""
    g = np.full((2, 3), 1e-4)
    g[0, 1] = 0.0
    xb = circuitsim.Crossbar(conductance=g, r_row=1.0, r_col=1.0)
    drive = make_drive(xb, [1.0, 0.5], None, None, None, None)
    cells = [VTEAM().with_state(x) for x in np.linspace(0.1, 0.9, 6)]
    waveforms = [f"PWL(0 0 1e-06 {k})" for k in range(len(drive.circuit.fixed))]
    return render(drive.circuit, drive.fixed_volts[0], ".tran 1e-9 1e-6", waveforms=waveforms, cells=cells)


def _capacitors_1s1r():
    """A .tran deck with every kind of capacitor: to ground, across cells, coupling rows and
    columns; a zero-ohm segment (a capacitor whose ends merge is left out), a floating column,
    zero capacitances."""
    rng = np.random.default_rng(5)
    r_row = rng.uniform(0.5, 5.0, (3, 4))
    r_row[1, 2] = 0.0
    c_row = rng.uniform(1e-17, 1e-16, (3, 4))
    c_row[0, 0] = 0.0
    xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (3, 4)), r_row=r_row, r_col=2.0,
                             selector=SinhSelector(), c_row=c_row, c_col=rng.uniform(1e-17, 1e-16, (3, 4)),
                             c_cell=1e-17, c_couple=rng.uniform(1e-18, 1e-17, (3, 4)))
    drive = Drive([0.0, 1e-10, 1e-9], np.outer([0, 1, 1], [0.5, 0.6, 0.7]), np.zeros((3, 4)))
    return transient_deck(xb, None, drive, floating_cols=[False, False, True, False])


BUILDERS = {"edge_1r": _edge_1r, "dead_1s1r": _dead_1s1r, "gates_1t1r": _gates_1t1r,
            "transient_cells": _transient_cells, "capacitors_1s1r": _capacitors_1s1r}


def normalized(deck: str) -> str:
    """The deck without what depends on the checkout: the package version, the models' folder."""
    deck = re.sub(r"^\* circuitsim \S+:", "* circuitsim VERSION:", deck, count=1)
    return re.sub(r'^\.include "[^"\n]*/([^/"\n]+)"$', r'.include "\1"', deck, flags=re.MULTILINE)


if __name__ == "__main__":
    DECKS.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        (DECKS / f"{name}.cir").write_text(normalized(build()))
