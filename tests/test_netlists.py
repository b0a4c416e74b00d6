"""The decks in netlists/: hand-written references and generated examples users can open.

They run in the ngspice program itself (`ngspice -b`, not the shared library), from a folder
that is not theirs, so their .include paths must be portable.
"""
from pathlib import Path

import numpy as np
import pytest
from conftest import run_ngspice
from scipy.optimize import brentq

import circuitsim
from circuitsim.cli import design_netlist, main
from circuitsim.netlist import relative_includes

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = ROOT / "netlists"
GENERATED = ["design", "design_1r", "design_1t1r"]  # netlists/<name>.cir from examples/<name>.toml


@pytest.mark.parametrize("name", GENERATED)
def test_generated_decks_are_current(name):
    """Each example deck is what `circuitsim netlist examples/<name>.toml --out netlists/<name>.cir` writes."""
    expected = relative_includes(design_netlist(ROOT / "examples" / f"{name}.toml"), NETLISTS)
    assert (NETLISTS / f"{name}.cir").read_text() == expected, \
        f"regenerate: circuitsim netlist examples/{name}.toml --out netlists/{name}.cir"


@pytest.mark.parametrize("name", GENERATED)
def test_generated_decks_run_in_ngspice_program(name, tmp_path):
    """The saved deck runs from another folder and gives the numpy engine's column currents."""
    from circuitsim.config import load_design

    op = run_ngspice(NETLISTS / f"{name}.cir", tmp_path)
    xb, drive = load_design(ROOT / "examples" / f"{name}.toml")
    first = {k: np.atleast_2d(v)[0] for k, v in drive.items()}
    expected = circuitsim.simulate(xb, engine="numpy", **first).column_currents
    measured = np.array([op[f"i(vout{j})"] for j in range(xb.shape[1])])
    np.testing.assert_allclose(measured, expected, rtol=1e-6, atol=1e-15)


def test_hand_written_2x2_reference_matches_the_numpy_engine(tmp_path):
    """An independent deck, written from DESIGN.md's wiring convention, not by the generator."""
    op = run_ngspice(NETLISTS / "reference_2x2_1r.cir", tmp_path)
    xb = circuitsim.Crossbar(conductance=[[100e-6, 20e-6], [50e-6, 10e-6]], r_row=50.0, r_col=80.0)
    res = circuitsim.simulate(xb, [0.5, 0.3], engine="numpy")
    np.testing.assert_allclose([op["i(vcol0)"], op["i(vcol1)"]], res.column_currents, rtol=1e-9)
    np.testing.assert_allclose([-op["i(vrow0)"], -op["i(vrow1)"]], res.row_currents, rtol=1e-9)
    np.testing.assert_allclose(op["v(b10)"], res.node_voltage("b1c0"), rtol=1e-9)
    ideal = np.array([0.5, 0.3]) @ xb.conductance
    assert np.all(res.column_currents < ideal)  # the wires take their share


def test_hand_written_1s1r_cell_matches_its_closed_form(tmp_path):
    op = run_ngspice(NETLISTS / "reference_1s1r_cell.cir", tmp_path)
    current = brentq(lambda i: i * 10e3 + 0.1 * np.arcsinh(i / 10e-9) - 1.0, 0.0, 1e-4, xtol=1e-18)
    np.testing.assert_allclose(-op["i(vin)"], current, rtol=1e-6)  # ngspice's Newton tolerance


def test_netlist_out_writes_a_portable_deck(tmp_path, capsys):
    out = tmp_path / "deck.cir"
    assert main(["netlist", str(ROOT / "examples" / "design.toml"), "--out", str(out)]) == 0
    includes = [line.split('"')[1] for line in out.read_text().splitlines() if line.startswith(".include")]
    assert includes and all(not Path(p).is_absolute() and (tmp_path / p).is_file() for p in includes)
    assert [p.name for p in tmp_path.iterdir()] == ["deck.cir"]
    (tmp_path / "elsewhere").mkdir()
    assert run_ngspice(out, tmp_path / "elsewhere")["i(vout0)"] > 0
    assert main(["netlist", str(ROOT / "examples" / "design.toml"), "--out", str(tmp_path / "no" / "x.cir")]) == 2
    assert "does not exist" in capsys.readouterr().err
