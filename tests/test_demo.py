"""The demo: the quick variant of the same code path, with real ngspice, real files."""
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import run_ngspice
from matplotlib.image import imread

from circuitsim import demo
from circuitsim.cli import main


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines = []
    result = demo.run_demo(out, demo.QUICK, echo=lines.append)
    return out, result, "\n".join(lines)


def test_quick_demo_writes_figures(quick, tmp_path):
    out, result, _ = quick
    assert set(result.figures) == {"ir_drop", "read_margin", "nn_accuracy", "parity"}
    for path in result.figures.values():
        assert path.parent == out and path.suffix == ".png"
        image = imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0.01  # not blank
    assert (out / "crossbar.cir").read_text().rstrip().endswith(".end")
    assert run_ngspice(out / "crossbar.cir", tmp_path)["i(vout0)"] > 0
    assert not list(out.glob("*.part"))


def test_quick_demo_hdf5_holds_the_numbers(quick):
    _, result, _ = quick
    with h5py.File(result.hdf5, "r") as f:  # plain h5py sees everything: the store folds all points at close
        points = f["points"]
        assert set(points) == {"spice_run", "ir_drop", "read_margin-floating", "read_margin-v_2", "read_margin-v_3",
                               "nn-accuracy", "nn-spot_check", "nn-energy", "nn-sweep-r_wire", "nn-sweep-adc_bits",
                               "nn-sweep-tile_size"}
        run = points["spice_run"]
        np.testing.assert_allclose(run["outputs/spice_column_currents_a"][()],
                                   run["outputs/numpy_column_currents_a"][()], rtol=1e-6)
        assert run["provenance/netlist"].asstr()[()].startswith("* circuitsim")
        assert points["ir_drop/outputs/effective_v"].shape == (8, 8)
        acc = points["nn-accuracy/outputs"]
        assert list(acc["name"].asstr()[()]) == list(result.accuracy)
        np.testing.assert_allclose(acc["accuracy"][()], [a for a, _ in result.accuracy.values()])
        assert points["nn-energy/outputs/total_fj_per_mac"][()] == pytest.approx(result.energy.total_fj)
        assert points["nn-accuracy/inputs/hardware/selector/v0"][()] == demo.NN_HARDWARE.selector.v0
        assert len(points["nn-sweep-adc_bits/outputs/accuracy"]) == 2


def test_quick_demo_agreement_and_accuracy(quick):
    _, result, _ = quick
    assert result.spice_numpy_rel_diff < 1e-6
    assert result.spot_check.max_rel_diff < 1e-6 and result.spot_check.cell_type == "1S1R"
    assert len(result.accuracy) == 5
    assert all(0.0 <= acc <= 1.0 and n > 0 for acc, n in result.accuracy.values())
    assert result.accuracy["float weights"][0] > 0.8
    assert 0 < result.energy.array_fj < result.energy.total_fj


def test_quick_demo_shows_progress_netlist_and_folder(quick):
    out, _, text = quick
    for k in range(1, 7):
        assert f"[{k}/6]" in text
    assert "Rcell0_0" in text and "XS0_0" in text and "more Rrow lines" in text and ".op" in text
    assert f"Output folder: {out.resolve()}" in text


def test_netlist_excerpt_cuts_runs_of_elements():
    deck = "* title\nR1 a b 1\nR2 b c 1\nR3 c d 1\nR4 d e 1\nV1 a 0 1\n.op\n.end"
    assert demo.netlist_excerpt(deck, per_run=2).splitlines() == [
        "* title", "R1 a b 1", "R2 b c 1", "... (2 more R lines)", "V1 a 0 1", ".op", ".end"]


def test_demo_refuses_a_file_as_output_folder(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["demo", "--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


@pytest.mark.slow
def test_full_demo_cli_under_three_minutes(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "circuitsim.cli", "demo", "--out", str(tmp_path / "tour")],
                          capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert elapsed < 180, f"the demo took {elapsed:.0f} s"
    assert (tmp_path / "tour" / "results.h5").is_file() and len(list((tmp_path / "tour").glob("*.png"))) == 4
