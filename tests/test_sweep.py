"""Sweeps: config expansion, real ngspice on a process pool and on a Dask LocalCluster, a real
kill -9 of a running sweep, resuming, failed points and the file lock."""
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

import circuitsim
from circuitsim.store import Store, StoreLockedError, read_points, to_dataframe
from circuitsim.sweep import load_sweep, max_workers, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[sweep]
mode = "grid"
engine = "spice"
timeout_s = {timeout_s}
metrics = ["cell_currents"]

[array]
rows = 3
cols = 4
g_min = 1e-6
g_max = 1e-4
seed = 0

[crossbar]
r_row = 2.0
r_col = 2.0

[selector]
type = "sinh"
i0 = 1e-8
v0 = 0.1

[drive]
v_read = 0.5
vectors = 2
seed = 1

[axes]
{axes}
"""


def _config(tmp_path, axes='"crossbar.r_row+crossbar.r_col" = [1.0, 5.0]\n"selector.v0" = [0.05, 0.1]',
            timeout_s=60, name="sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(axes=axes, timeout_s=timeout_s))
    return path


def test_grid_and_random_points_are_expanded_and_validated(tmp_path):
    grid = load_sweep(_config(tmp_path, axes='"array.rows" = [2, 3, 4]\n"selector.v0" = [0.05, 0.1]'))
    assert len(grid.points) == 6
    assert sorted({p.crossbar.shape for p in grid.points}) == [(2, 4), (3, 4), (4, 4)]
    assert len({p.key for p in grid.points}) == 6
    as_dict = tomllib.loads(_config(tmp_path, axes='"array.rows" = [2, 3, 4]\n"selector.v0" = [0.05, 0.1]').read_text())
    assert [p.key for p in load_sweep(as_dict).points] == [p.key for p in grid.points]
    random_axes = ('"crossbar.r_row+crossbar.r_col" = {low = 0.5, high = 20.0, log = true}\n'
                   '"array.cols" = {low = 2, high = 6}')
    cfg = _config(tmp_path, axes=random_axes).read_text().replace('mode = "grid"',
                                                                  'mode = "random"\nsamples = 5\nseed = 3')
    (tmp_path / "random.toml").write_text(cfg)
    first, again = load_sweep(tmp_path / "random.toml"), load_sweep(tmp_path / "random.toml")
    assert [p.key for p in first.points] == [p.key for p in again.points]  # seeded
    assert all(0.5 <= p.params["crossbar.r_row"] <= 20 and p.crossbar.shape[1] in range(2, 7) for p in first.points)
    assert all(p.params["crossbar.r_row"] == p.params["crossbar.r_col"] for p in first.points)  # one draw per axis
    assert len({p.params["crossbar.r_row"] for p in first.points}) == 5


def test_an_empty_device_table_means_its_defaults():
    doc = {"array": {"rows": 2, "cols": 3, "g_min": 1e-6, "g_max": 1e-4}, "transistor": {},
           "axes": {"array.seed": [1, 2]}}
    assert [p.crossbar.cell_type for p in load_sweep(doc).points] == ["1T1R", "1T1R"]


@pytest.mark.parametrize("axes, message", [
    ('"wires.r" = [1.0]', "table one of"),
    ('"crossbar.r_wire" = [1.0]', "unknown key 'r_wire'"),
    ('"crossbar.r_row" = [-1.0]', "r_row must be non-negative"),
    ('"selector.v0" = 0.1', "non-empty list"),
    ('"drive.scheme" = ["v/4"]', "scheme must be"),
    ('"selector.w0" = [0.1]', "w0"),
])
def test_bad_sweep_config_fails_before_anything_runs(tmp_path, axes, message):
    out = tmp_path / "never.h5"
    with pytest.raises(ValueError, match=message):
        run_sweep(_config(tmp_path, axes=axes), out, workers=1, progress=False)
    assert not out.exists()


@pytest.mark.parametrize("workers", [0, -1, 2.5, True, 1000, max_workers() + 1])
def test_bad_worker_count_fails_before_anything_runs(tmp_path, workers):
    with pytest.raises(ValueError, match=f"workers must be an integer from 1 to {max_workers()}"):
        run_sweep(_config(tmp_path), tmp_path / "never.h5", workers=workers, progress=False)
    assert not (tmp_path / "never.h5").exists()


@pytest.mark.parametrize("timeout_s", ["10", True, 0, -1.0, float("inf"), float("nan")])
def test_bad_time_limit_fails_before_anything_runs(tmp_path, timeout_s):
    doc = _numpy_sweep(4, 1, 1) | {"sweep": {"engine": "numpy", "timeout_s": timeout_s}}
    with pytest.raises(ValueError, match="timeout_s must be a positive finite number of seconds"):
        run_sweep(doc, tmp_path / "never.h5", workers=1, progress=False)
    assert not (tmp_path / "never.h5").exists()


def test_too_many_workers_is_a_one_line_error_on_the_command_line(tmp_path):
    run = subprocess.run(_sweep_command(_config(tmp_path), tmp_path / "never.h5", "--workers", "1000"), cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"workers must be an integer from 1 to {max_workers()}" in run.stderr
    assert not (tmp_path / "never.h5").exists()


def _check_against_numpy(points: dict, n: int) -> None:
    """Stored SPICE column currents agree with the numpy engine for the stored design and drive."""
    g, v_rows = points["inputs/design/conductance"][n], points["inputs/drive/v_rows"][n]
    selector = circuitsim.devices.SinhSelector(i0=points["inputs/design/selector/i0"][n],
                                               v0=points["inputs/design/selector/v0"][n])
    xb = circuitsim.Crossbar(conductance=g, r_row=points["inputs/design/r_row"][n],
                             r_col=points["inputs/design/r_col"][n], selector=selector)
    exact = circuitsim.simulate(xb, v_rows, engine="numpy")
    stored = points["outputs/column_currents"][n]
    error = np.max(np.abs(stored - exact.column_currents)) / np.max(np.abs(exact.column_currents))  # 2e-8 measured
    assert error <= 1e-6, f"SPICE and numpy column currents differ by {error:.2e} of full scale (limit 1e-6)"


def test_sweep_on_a_process_pool_stores_spice_results_with_provenance(tmp_path):
    out = tmp_path / "pool.h5"
    summary = run_sweep(_config(tmp_path), out, workers=2, progress=False, log=lambda _: None)
    assert (summary.total, summary.ok, summary.failed) == (4, 4, 0)
    pts = read_points(out)
    assert pts["outputs/column_currents"].shape == (4, 2, 4) and pts["outputs/cell_currents"].shape == (4, 2, 3, 4)
    assert pts["outputs/power"].shape == (4, 2) and pts["outputs/row_currents"].shape == (4, 2, 3)
    for n in range(4):
        _check_against_numpy(pts, n)
    versions = set(pts["provenance/ngspice_version"])
    assert len(versions) == 1 and versions.pop().isdigit()  # the one ngspice the workers loaded
    assert all(len(s) == 64 for s in pts["provenance/netlist_sha256"])
    assert set(pts["provenance/engine"]) == {"spice"} and set(pts["provenance/host"]) == {os.uname().nodename}
    assert (pts["provenance/wall_time_s"] > 0).all() and "provenance/pyspice_version" in pts
    assert set(pts["provenance/model_parameters/selector/v0"]) == {0.05, 0.1}
    assert set(pts["provenance/seed/array"]) == {0} and set(pts["provenance/seed/drive"]) == {1}
    df = to_dataframe(out)  # tidy: one row per point, the swept parameters and scalar results as columns
    assert sorted(zip(df["crossbar.r_row"], df["selector.v0"])) == [(1.0, 0.05), (1.0, 0.1), (5.0, 0.05), (5.0, 0.1)]
    assert df.loc[pts["key"], "column_currents.max"].tolist() == [c.max() for c in pts["outputs/column_currents"]]
    assert set(df["status"]) == {"ok"} and set(df["engine"]) == {"spice"} and (df["wall_time_s"] > 0).all()
    again = run_sweep(_config(tmp_path), out, workers=2, progress=False, log=lambda _: None)
    assert (again.stored, again.ok) == (4, 0)  # nothing recomputed


def test_failed_points_are_recorded_and_retried(tmp_path):
    out = tmp_path / "fail.h5"
    summary = run_sweep(_config(tmp_path, timeout_s=1e-4), out, workers=1, progress=False, log=lambda _: None)
    assert (summary.ok, summary.failed) == (0, 4)
    failed = read_points(out, status="failed")
    assert all(e.startswith("PointTimeout:") and "time limit of 0.0001 s" in e for e in failed["error"]), \
        failed["error"]
    kept = run_sweep(_config(tmp_path, timeout_s=60), out, workers=1, progress=False, log=lambda _: None)
    assert (kept.kept_failed, kept.ok) == (4, 0)
    retried = run_sweep(_config(tmp_path, timeout_s=60), out, workers=2, retry_failed=True, progress=False,
                        log=lambda _: None)
    assert (retried.ok, retried.failed) == (4, 0) and len(read_points(out)["key"]) == 4


def test_read_margin_metric_for_a_bias_scheme(tmp_path):
    axes = '"drive.scheme" = ["v/2", "v/3"]'
    cfg = _config(tmp_path, axes=axes).read_text().replace('["cell_currents"]', '["read_margin"]')
    (tmp_path / "rm.toml").write_text(cfg)
    run_sweep(tmp_path / "rm.toml", tmp_path / "rm.h5", workers=2, progress=False, log=lambda _: None)
    pts = read_points(tmp_path / "rm.h5")
    design = circuitsim.Crossbar(conductance=np.full((3, 4), 1e-6), r_row=2.0, r_col=2.0,
                                 selector=circuitsim.devices.SinhSelector(i0=1e-8, v0=0.1))
    expected = {s: circuitsim.analysis.read_margin(design, 1e-4, 1e-6, v_read=0.5, scheme=s) for s in ("v/2", "v/3")}
    for scheme, margin in zip(pts["inputs/params/drive/scheme"], pts["outputs/read_margin/margin"]):
        error = abs(margin - expected[scheme].margin) / abs(expected[scheme].margin)
        assert error <= 1e-5, f"{scheme}: stored read margin differs by {error:.2e} (relative; limit 1e-5)"


def test_sweep_on_a_dask_local_cluster(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = run_sweep(_config(tmp_path), tmp_path / "dask.h5", scheduler=cluster.scheduler_address,
                            progress=False, log=lambda _: None)
    assert (summary.ok, summary.failed) == (4, 0)
    pts = read_points(tmp_path / "dask.h5")
    assert len(set(pts["provenance/ngspice_version"])) == 1
    assert len(set(pts["provenance/worker_pid"])) == 2 and os.getpid() not in pts["provenance/worker_pid"]
    for n in range(4):
        _check_against_numpy(pts, n)


def _sweep_command(config: Path, out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "circuitsim.cli", "sweep", str(config), "--out", str(out), *extra]


def test_killed_sweep_leaves_a_readable_file_and_resumes(tmp_path):
    axes = '"array.rows" = [16, 17, 18, 19, 20, 21]\n"selector.v0" = [0.05, 0.07, 0.1, 0.12]'
    config = _config(tmp_path, axes=axes)
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen(_sweep_command(config, out, "--workers", "2"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not out.exists() or len(Store.open(out, "r")) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(StoreLockedError, match="being written by another process"):
            Store.open(out, "a")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 20  # its workers notice and end on their own
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    done = read_points(out)
    assert 3 <= len(done["key"]) < 24
    with h5py.File(out, "r") as f:  # the main file itself opens with plain h5py
        assert f.attrs["format"] == "circuitsim-store"
    rerun = subprocess.run(_sweep_command(config, out, "--workers", "2"), cwd=ROOT, capture_output=True, text=True,
                           timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    stored = len(done["key"])
    assert f"24 points, {stored} already stored" in rerun.stdout and f"{24 - stored} to compute" in rerun.stdout
    assert f"computed {24 - stored} ok, 0 failed" in rerun.stdout
    final = read_points(out)
    assert len(final["key"]) == 24
    before = dict(zip(done["key"], done["written_unix_s"]))
    after = dict(zip(final["key"], final["written_unix_s"]))
    assert all(after[k] == t for k, t in before.items())  # the points done before the kill were kept


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_second_sweep_on_the_same_file_gets_a_clear_error(tmp_path):
    config, out = _config(tmp_path), tmp_path / "locked.h5"
    with Store.open(out, "a"):
        second = subprocess.run(_sweep_command(config, out), cwd=ROOT, capture_output=True, text=True, timeout=120,
                                check=False)
    assert second.returncode == 2 and "being written by another process" in second.stderr
    assert len(Store.open(out, "r")) == 0


def _numpy_sweep(rows: int, vectors: int, seeds: int, timeout_s: float = 60.0, selector: bool = False) -> dict:
    """A numpy-engine sweep over `seeds` conductance draws of a rows x rows array, storing node voltages
    (8 bytes x 2 x rows² x vectors per point)."""
    doc = {"sweep": {"engine": "numpy", "timeout_s": timeout_s, "metrics": ["node_voltages"]},
           "array": {"rows": rows, "cols": rows, "g_min": 1e-6, "g_max": 1e-4},
           "crossbar": {"r_row": 2.0, "r_col": 2.0}, "drive": {"v_read": 0.5, "vectors": vectors},
           "axes": {"array.seed": list(range(seeds))}}
    if selector:
        doc["selector"] = {"type": "sinh", "i0": 1e-8, "v0": 0.1}
    return doc


def test_numpy_point_past_its_time_limit_is_killed_and_recorded_failed(tmp_path):
    """A 1024x1024 1S1R point with 2 vectors takes ~12 s in the numpy engine (measured); with a 1.5 s
    limit it is stopped near 1.5 s and stored as failed with a timeout error."""
    out = tmp_path / "limit.h5"
    summary = run_sweep(_numpy_sweep(1024, 2, 1, timeout_s=1.5, selector=True), out, workers=1, progress=False,
                        log=lambda _: None)
    assert (summary.ok, summary.failed) == (0, 1)
    failed = read_points(out, status="failed")
    assert failed["error"][0].startswith("PointTimeout:") and "time limit of 1.5 s" in failed["error"][0]
    ran_s = failed["provenance/wall_time_s"][0]
    assert 1.5 <= ran_s < 3.0, f"the point ran {ran_s:.2f} s under a 1.5 s limit"
    assert summary.wall_s < 10.0, f"the sweep took {summary.wall_s:.1f} s"


_PEAK_RSS_SCRIPT = """
import resource, sys, json
from circuitsim.sweep import run_sweep
config = json.loads(sys.argv[1])
seeds = config["axes"]["array.seed"]
for first in (2, len(seeds)):  # warm up on 2 points, then the rest into the same store
    run_sweep(config | {"axes": {"array.seed": seeds[:first]}}, sys.argv[2], workers=1, progress=False,
              log=lambda _: None)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_sweep_process_does_not_keep_results_in_memory(tmp_path):
    """After a 2-point warm-up, 8 more points of 4.2 MB node voltages each (34 MB) go through the
    sweep process: its peak RSS must not grow with them (each point is written and dropped).
    Measured: 0.5 MB (before, when the results stayed in memory: 28 MB)."""
    import json

    out = tmp_path / "big.h5"
    run = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT, json.dumps(_numpy_sweep(32, 256, 10)), str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    warm_kb, final_kb = map(int, run.stdout.split())
    pts = read_points(out)
    later_mb = sum(v.nbytes for v in pts["outputs/node_voltages"][2:]) / 1e6
    assert len(pts["key"]) == 10 and later_mb > 30, later_mb
    growth_mb = (final_kb - warm_kb) / 1024
    assert growth_mb < later_mb / 3, f"peak RSS grew by {growth_mb:.1f} MB over {later_mb:.1f} MB of results"


def _session_processes(sid: int) -> list[int]:
    """Pids of live (not zombie) processes in session `sid`: a sweep started in a new session and
    everything it started, however deep and whoever their parent is now."""
    import psutil

    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return alive


@pytest.mark.parametrize("moment", ["first child", "0.5 s after", pytest.param("first point", marks=pytest.mark.slow)])
def test_sweep_killed_early_leaves_no_process_behind(tmp_path, moment):
    """kill -9 of the sweep while its workers are starting or computing: every process it started
    (workers and their ngspice children) ends on its own within a few seconds."""
    import psutil

    config = _config(tmp_path, axes='"array.rows" = [8, 9, 10, 11]\n"selector.v0" = [0.05, 0.1]')
    out = tmp_path / "early.h5"
    proc = subprocess.Popen(_sweep_command(config, out, "--workers", "2"), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(proc.pid).children():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        if moment == "0.5 s after":
            time.sleep(0.5)
        while moment == "first point" and not (out.exists() and len(Store.open(out, "r"))):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        started = len(psutil.Process(proc.pid).children(recursive=True))
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 15
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _session_processes(proc.pid) == [], f"{moment}: survivors of the {started} processes started"
    finally:
        for pid in _session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_folder_as_out_is_a_one_line_error_on_the_command_line(tmp_path):
    run = subprocess.run(_sweep_command(_config(tmp_path), tmp_path), cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert f"{tmp_path} is a folder" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


def _not_dask_server(reply: bytes):
    """A local TCP server that answers every connection with `reply` (not the Dask protocol)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(reply)
                conn.recv(1024)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_scheduler_address_that_is_not_dask_gives_a_one_line_error(tmp_path):
    server = _not_dask_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" * 10)
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        run = subprocess.run(_sweep_command(_config(tmp_path), tmp_path / "never.h5", "--scheduler", address),
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.close()
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert f"{address} answered, but not as a Dask scheduler" in run.stderr and "EiB" not in run.stderr
    assert not (tmp_path / "never.h5").exists()


@pytest.mark.timeout(120)
def test_dask_sweep_whose_only_worker_dies_stops_with_a_clear_error(tmp_path):
    """A real scheduler with one worker process (no nanny to restart it), killed with SIGKILL while it
    computes: the sweep stops within its worker wait instead of waiting forever."""
    from dask.distributed import LocalCluster

    from circuitsim.errors import SchedulerError

    out = tmp_path / "lost.h5"
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                   "--no-nanny", "--nthreads", "1", "--no-dashboard"], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def kill_when_busy():
                import psutil

                deadline = time.monotonic() + 60
                while not psutil.Process(worker.pid).children() and time.monotonic() < deadline:
                    time.sleep(0.05)  # its runner process appears when the first point starts
                worker.kill()

            import threading

            killer = threading.Thread(target=kill_when_busy)
            killer.start()
            start = time.monotonic()
            with pytest.raises(SchedulerError, match="has had no worker for 3 s; 2 points were not computed"):
                run_sweep(_numpy_sweep(256, 8, 2, selector=True), out, scheduler=cluster.scheduler_address,
                          progress=False, log=lambda _: None, worker_wait_s=3.0)
            waited_s = time.monotonic() - start
            killer.join()
        finally:
            worker.kill()
            worker.wait()
    assert waited_s < 30, f"the sweep stopped after {waited_s:.1f} s"
    assert len(Store.open(out, "r")) == 0


@pytest.mark.slow
def test_a_worker_process_that_dies_fails_its_point_and_the_sweep_goes_on(tmp_path):
    """The worker computing the first point (1024x1024 1S1R, 6 vectors, ~7 s of CPU) is killed after 4 s
    of CPU time (well past its start-up, as the OOM killer would): that point is stored as failed, a
    fresh worker computes the second one (4x4)."""
    import threading

    import psutil

    def kill_worker_when_computing():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for worker in psutil.Process().children():
                try:
                    busy = "circuitsim.runner" in " ".join(worker.cmdline()) and worker.cpu_times().user > 4.0
                except psutil.NoSuchProcess:  # a child that has just ended (a zombie among them)
                    continue
                if busy:
                    worker.kill()
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_when_computing)
    killer.start()
    doc = _numpy_sweep(1024, 6, 1, selector=True) | {"axes": {"array.rows+array.cols": [1024, 4]}}
    summary = run_sweep(doc, tmp_path / "lost.h5", workers=1, progress=False, log=lambda _: None)
    killer.join()
    assert (summary.ok, summary.failed) == (1, 1)
    failed, ok = read_points(tmp_path / "lost.h5", status="failed"), read_points(tmp_path / "lost.h5")
    assert failed["error"][0].startswith("WorkerLostError: the worker process died (exit code -9)"), failed["error"]
    assert failed["inputs/params/array/rows"][0] == 1024 and ok["inputs/params/array/rows"][0] == 4
