"""The decks in netlists/: hand-written references and generated examples users can open.

They run in the ngspice program itself (`ngspice -b`, not the shared library), from a folder
that is not theirs, so their .include paths must be portable.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_ngspice
from golden_decks import BUILDERS, DECKS, normalized
from margins import assert_close
from scipy.optimize import brentq

import circuitsim
from circuitsim.cli import design_netlist, main
from circuitsim.netlist import OP_TOLERANCES, relative_includes

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = ROOT / "netlists"
GENERATED = ["design", "design_1r", "design_1t1r"]  # netlists/<name>.cir from examples/<name>.toml


@pytest.mark.parametrize("name", GENERATED)
def test_generated_decks_are_current(name):
    """Each example deck is what `circuitsim netlist examples/<name>.toml --out netlists/<name>.cir` writes."""
    expected = relative_includes(design_netlist(ROOT / "examples" / f"{name}.toml"), NETLISTS)
    assert (NETLISTS / f"{name}.cir").read_text() == expected, \
        f"regenerate: circuitsim netlist examples/{name}.toml --out netlists/{name}.cir"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_deck_text_is_byte_identical_to_its_golden_copy(name):
    """Open cells, zero-ohm and floating lines, dead nodes, gates, transient cells: every branch of
    render() writes exactly the bytes it wrote when tests/decks/ was made (speed-ups of the deck
    writer must not change a deck)."""
    deck = normalized(BUILDERS[name]())
    golden = (DECKS / f"{name}.cir").read_text()
    differing = [k for k, (a, b) in enumerate(zip(deck.splitlines(), golden.splitlines())) if a != b]
    assert deck == golden, f"{name}: {len(deck.splitlines())} lines vs {len(golden.splitlines())}, " \
                           f"first differing line {differing[:1]}"


@pytest.mark.parametrize("name", GENERATED)
def test_generated_decks_run_in_ngspice_program(name, tmp_path):
    """The saved deck runs from another folder and gives the numpy engine's column currents."""
    from circuitsim.config import load_design

    op = run_ngspice(NETLISTS / f"{name}.cir", tmp_path)
    xb, drive = load_design(ROOT / "examples" / f"{name}.toml")
    first = {k: np.atleast_2d(v)[0] for k, v in drive.items()}
    expected = circuitsim.simulate(xb, engine="numpy", **first).column_currents
    measured = np.array([op[f"i(vout{j})"] for j in range(xb.shape[1])])
    assert_close(measured, expected, rtol=1e-6, atol=1e-15, what="column currents")


def test_hand_written_2x2_reference_matches_the_numpy_engine(tmp_path):
    """An independent deck, written from DESIGN.md's wiring convention, not by the generator."""
    op = run_ngspice(NETLISTS / "reference_2x2_1r.cir", tmp_path)
    xb = circuitsim.Crossbar(conductance=[[100e-6, 20e-6], [50e-6, 10e-6]], r_row=50.0, r_col=80.0)
    res = circuitsim.simulate(xb, [0.5, 0.3], engine="numpy")
    assert_close([op["i(vcol0)"], op["i(vcol1)"]], res.column_currents, rtol=1e-9, what="column currents")
    assert_close([-op["i(vrow0)"], -op["i(vrow1)"]], res.row_currents, rtol=1e-9, what="row currents")
    assert_close(op["v(b10)"], res.node_voltage("b1c0"), rtol=1e-9, what="node b1c0")
    ideal = np.array([0.5, 0.3]) @ xb.conductance
    assert np.all(res.column_currents < ideal)  # the wires take their share


def test_hand_written_1s1r_cell_matches_its_closed_form(tmp_path):
    op = run_ngspice(NETLISTS / "reference_1s1r_cell.cir", tmp_path)
    current = brentq(lambda i: i * 10e3 + 0.1 * np.arcsinh(i / 10e-9) - 1.0, 0.0, 1e-4, xtol=1e-18)
    assert_close(-op["i(vin)"], current, rtol=1e-6, what="cell current")  # ngspice's Newton tolerance


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


def test_op_tolerances_hold_with_megaohm_scale_wires():
    """1e4-1e5 ohm wires leave sub-microampere currents through sinh selectors; ngspice's default
    tolerances stopped 1.6e-7 (relative) from the exact answer there, the deck's own within 1e-10."""
    from circuitsim.circuit import make_drive
    from circuitsim.devices import SinhSelector
    from circuitsim.solver.dc import NewtonOptions, leaving_currents, solve

    rng = np.random.default_rng(16)
    worst = 0.0
    for selector in (SinhSelector(), SinhSelector(i0=1e-9, v0=0.05)):
        xb = circuitsim.Crossbar(conductance=rng.uniform(1e-6, 1e-4, (16, 16)), r_row=rng.uniform(1e4, 1e5, (16, 16)),
                                 r_col=rng.uniform(1e4, 1e5, (16, 16)), selector=selector)
        v = rng.uniform(0, 1.0, (2, 16))
        drive = make_drive(xb, v, None, None, None, None)
        exact_v = solve(drive.circuit, drive.fixed_volts, NewtonOptions(vtol_v=1e-14, reltol_kcl=1e-16))
        exact = leaving_currents(drive.circuit, exact_v, None)[:, drive.circuit.fixed]
        spice = circuitsim.simulate(xb, v, engine="spice")
        exact_cols = -exact[:, -16:]  # a sense source delivers what the column carries into it
        worst = max(worst, np.max(np.abs(spice.column_currents - exact_cols) / np.abs(exact_cols)))
    assert worst < 1e-9 / 3, f"spice vs the exact nodal solution: {worst:.2e} relative (tolerance 1e-9, margin 3)"


@pytest.mark.parametrize("kind", ["1S1R", "1T1R"])
def test_self_contained_deck_runs_anywhere_and_prints_what_simulate_answers(kind, tmp_path):
    """netlist(..., self_contained=True) copied alone to another folder: the ngspice program runs it,
    prints one table of column currents (not every node), and they are simulate()'s."""
    from conftest import random_crossbar

    rng = np.random.default_rng(6)
    xb = random_crossbar(rng, 4, 5, kind)
    v, v_cols = rng.uniform(0.3, 1.0, 4), rng.uniform(0.0, 0.05, 5)
    deck = circuitsim.netlist(xb, v, v_cols=v_cols, self_contained=True)
    assert ".include" not in deck and OP_TOLERANCES in deck  # the engine's tolerances, not ngspice's defaults
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "deck.cir").write_text(deck)
    done = subprocess.run([shutil.which("ngspice"), "-b", "deck.cir"], cwd=elsewhere, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "error" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    table = done.stdout.split("vout4#branch", 1)[1].splitlines()
    printed = np.array([float(x) for x in next(line for line in table if line.startswith("0\t")).split()[2:]])
    assert len(done.stdout.splitlines()) < 60  # the currents, not every node
    expected = circuitsim.simulate(xb, v, v_cols=v_cols, engine="spice").column_currents
    assert_close(printed, expected, rtol=5e-6, what="printed column currents (7 digits)")
    assert_close(run_ngspice(elsewhere / "deck.cir", tmp_path)["i(vout0)"], expected[0], rtol=1e-9,
                 what="rawfile column current")


def test_cli_netlist_self_contained(tmp_path):
    out = tmp_path / "deck.cir"
    assert main(["netlist", str(ROOT / "examples" / "design.toml"), "--self-contained", "--out", str(out)]) == 0
    text = out.read_text()
    assert ".include" not in text and ".print dc i(Vout0)" in text
