"""Shared fixtures. SPICE tests run real ngspice: if it is missing they fail, never skip."""
import numpy as np
import pytest

import circuitsim
from circuitsim.devices import NmosAccess, SinhSelector


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


CELL_KINDS = {
    "1R": {},
    "1S1R": {"selector": SinhSelector()},
    "1T1R": {"transistor": NmosAccess()},
}


def random_crossbar(rng, rows, cols, kind="1R", **overrides):
    """A crossbar with random conductances and per-segment wire resistances."""
    kw = dict(conductance=rng.uniform(1e-6, 1e-4, (rows, cols)), r_row=rng.uniform(0.5, 5.0, (rows, cols)),
              r_col=rng.uniform(0.5, 5.0, (rows, cols)), r_driver=rng.uniform(0, 20, rows),
              r_sense=rng.uniform(0, 20, cols), **CELL_KINDS[kind])
    kw.update(overrides)
    return circuitsim.Crossbar(**kw)
