"""The `circuitsim` command line, run as a real subprocess."""
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "circuitsim.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_simulate_prints_and_writes_column_currents(tmp_path):
    out = tmp_path / "i.csv"
    spice = run("simulate", "examples/design.toml", "--out", str(out))
    assert spice.returncode == 0, spice.stderr
    assert "vector 1:" in spice.stdout
    currents = np.loadtxt(out, delimiter=",")
    assert currents.shape == (2, 4)
    numpy_run = run("simulate", "examples/design.toml", "--engine", "numpy")
    printed = np.array([[float(x) for x in line.split(":")[1].split()]
                        for line in numpy_run.stdout.splitlines() if line.startswith("vector")])
    np.testing.assert_allclose(printed, currents, rtol=1e-5)


def test_netlist_command_prints_the_deck():
    res = run("netlist", "examples/design.toml")
    assert res.returncode == 0 and "XS3_3 m3c3 b3c3 sinh_selector" in res.stdout


def test_bad_design_file_gives_a_clear_error(tmp_path):
    design = tmp_path / "bad.toml"
    design.write_text('[crossbar]\nconductance = [[1e-4, -1e-5]]\n[drive]\nv_rows = [0.1]\n')
    res = run("simulate", str(design))
    assert res.returncode == 2 and "conductance must be non-negative" in res.stderr
    design.write_text('[crossbar]\nconductance = [[1e-4]]\nr_wire = 3\n[drive]\nv_rows = [0.1]\n')
    res = run("simulate", str(design))
    assert res.returncode == 2 and "unknown keys ['r_wire']" in res.stderr
    design.write_text('[crossbar]\nconductance = [[1e-4]]\n[selector]\ntype = "sinh\\n.control"\n'
                      '[drive]\nv_rows = [0.1]\n')
    res = run("simulate", str(design))
    assert res.returncode == 2 and "type must be one of" in res.stderr


def test_doctor_finds_ngspice_46():
    res = run("doctor")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ngspice 46" in res.stdout and "KLU" in res.stdout
