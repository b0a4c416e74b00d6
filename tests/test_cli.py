"""The `circuitsim` command line, run as a real subprocess."""
import os
import resource
import subprocess
import sys
import time
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


def cli(capsys, *args):
    """Exit code and stderr of the command line run in this process."""
    from circuitsim.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


def one_line_error(code, err, expected_code, message):
    assert code == expected_code, err
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err


def test_inputs_that_are_not_design_files(tmp_path, capsys):
    binary = tmp_path / "design.toml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for design, message in [(tmp_path, "is a folder, not a design file"),
                            (tmp_path / "missing.toml", "no such file"),
                            (binary, "not a text file"),
                            (fifo, "is not a regular file"),  # reading it would wait for a writer
                            ("/proc/self/mem", "cannot read a design file (Input/output error)")]:
        for command in ("simulate", "netlist"):
            one_line_error(*cli(capsys, command, str(design)), 2, message)


def test_outputs_are_checked_before_any_work(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    for command in (["simulate", "examples/design.toml", "--engine", "numpy"], ["netlist", "examples/design.toml"]):
        for out, message in [(folder, "is a folder; give a file name"),
                             ("/dev/full", "is not a regular file"),
                             ("/proc/deck.txt", "cannot write in folder /proc"),
                             (tmp_path / "missing" / "x.csv", "does not exist")]:
            one_line_error(*cli(capsys, *command, "--out", str(out)), 2, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not list(folder.iterdir())
    one_line_error(*cli(capsys, "demo", "--out", "examples/design.toml"), 2, "exists and is not a folder")


def test_calibrate_checks_its_output_before_fitting(capsys):
    start = time.perf_counter()
    one_line_error(*cli(capsys, "calibrate", "data/calibration_data.h5", "--out", "/nonexistent/x.h5"), 2,
                   "folder /nonexistent does not exist")
    one_line_error(*cli(capsys, "calibrate", "data", "--out", "x.h5"), 2, "data is a folder, not a results store")
    assert time.perf_counter() - start < 10, "calibrate worked before checking its output"


def test_characterize_checks_its_store_lock_before_running(tmp_path, capsys):
    from circuitsim.store import Store

    out = tmp_path / "char.h5"
    with Store.open(out, "a"):  # another writer holds it
        start = time.perf_counter()
        one_line_error(*cli(capsys, "characterize", "loop", "--model", "vteam", "--out", str(out)), 2,
                       "is being written by another process")
        assert time.perf_counter() - start < 10, "the protocol ran before the lock was checked"
    assert not (tmp_path / "char-loop.png").exists()
    one_line_error(*cli(capsys, "characterize", "loop", "--model", "vteam", "--setting", "loop_cycles=1e9",
                        "--out", str(out)), 2, "settings.loop_cycles must be in [1, 100], got 1000000000")


def test_sweep_array_rows_must_be_whole(tmp_path, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text('[sweep]\nengine = "numpy"\n[array]\ncols = 2\ng_min = 1e-6\ng_max = 1e-4\n'
                      '[axes]\n"array.rows" = [2, 2.7]\n')
    one_line_error(*cli(capsys, "sweep", str(config), "--out", str(tmp_path / "s.h5")), 2,
                   "[array] rows must be a whole number, got 2.7")
    one_line_error(*cli(capsys, "sweep", str(tmp_path), "--out", str(tmp_path / "s.h5")), 2, "is a folder")


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path):
    """A write that fails (here: a file size limit, as a full disk would) exits 1 with one line
    naming the file, and leaves neither the output nor its hidden partial file."""
    deck = tmp_path / "deck.cir"
    res = subprocess.run([sys.executable, "-m", "circuitsim.cli", "netlist", "examples/design.toml",
                          "--out", str(deck)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)))
    assert res.returncode == 1 and res.stderr == f"circuitsim netlist: error: {deck}: File too large\n", res.stderr
    assert not list(tmp_path.iterdir())


def test_debug_shows_the_traceback(tmp_path):
    loud = run("--debug", "simulate", str(tmp_path))
    assert "Traceback" in loud.stderr and "ValueError: " in loud.stderr, loud.stderr
    assert "is a folder, not a design file" in loud.stderr


def test_netlist_checks_the_drive_as_simulate_does(tmp_path, capsys):
    design = tmp_path / "d.toml"
    design.write_text('[crossbar]\nconductance = [[1e-4]]\n[drive]\nv_rows = 0.01\n')
    for command in ("simulate", "netlist"):
        one_line_error(*cli(capsys, command, str(design)), 2, r"v_rows must have shape (1,) or (batch, 1), got ()")
