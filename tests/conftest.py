"""Shared fixtures. SPICE tests run real ngspice: if it is missing they fail, never skip."""
import shutil
import subprocess
from pathlib import Path

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


def run_ngspice(deck: Path, tmp_path: Path) -> dict[str, float]:
    """Operating point of a deck file, from the rawfile of a batch run of the ngspice program."""
    ngspice = shutil.which("ngspice")
    assert ngspice, "the ngspice program is missing: run scripts/setup.sh"
    raw = tmp_path / f"{deck.stem}.raw"
    done = subprocess.run([ngspice, "-b", "-r", str(raw), str(deck)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "error" not in done.stdout.lower() + done.stderr.lower(), done.stdout + done.stderr
    header, data = raw.read_bytes().split(b"Binary:\n", 1)
    names = [line.split()[1] for line in header.decode().split("Variables:\n", 1)[1].splitlines()]
    values = np.frombuffer(data, dtype="<f8", count=len(names))
    return dict(zip(names, values.tolist()))
