"""The ngspice worker process: time limit, crash isolation, recycling, convergence failures."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from margins import assert_close

import circuitsim
from circuitsim.spice import server
from circuitsim.spice.worker import SpiceError, SpiceJob, SpiceTimeout, SpiceWorker

ROOT = Path(__file__).resolve().parents[1]

DIVIDER = "* divider\n.options klu\nV1 a 0 DC 1\nR1 a b 1k\nR2 b 0 3k\n.op\n.end\n"
SLOW = "* slow\n.options klu\nV1 a 0 SIN(0 1 1k)\nR1 a b 1k\nC1 b 0 1u\n.tran 1n 10 0 1n\n.end\n"
# 1 A forced into a node that can sink at most 1 mA: no DC solution exists
# (gmin=0: otherwise ngspice 39's transient op settles where 1 A flows through gmin, at 1e12 V)
IMPOSSIBLE = "* impossible\n.options klu gmin=0\nI1 0 a DC 1\nB1 a 0 I = 1e-3*tanh(V(a))\n.op\n.end\n"


def test_divider_runs_in_a_child_process():
    with SpiceWorker() as worker:
        out = worker.run(SpiceJob(DIVIDER))
        assert worker.pid is not None
    assert_close(out.vectors[0]["b"][0], 0.75, rtol=1e-12, what="divider voltage")
    assert out.ngspice_version.isdigit()


def test_the_child_runs_one_thread():
    """No OpenBLAS thread pool in the child beside ngspice (numpy starts one per core otherwise)."""
    with SpiceWorker() as worker:
        worker.run(SpiceJob(DIVIDER))
        threads = len(os.listdir(f"/proc/{worker.pid}/task"))
    assert threads == 1, f"the ngspice worker runs {threads} threads"


def test_time_limit_kills_a_hung_job_and_the_next_job_works():
    with SpiceWorker() as worker:
        start = time.monotonic()
        with pytest.raises(SpiceTimeout, match="slow design.*time limit of 1.5 s"):
            worker.run(SpiceJob(SLOW, label="slow design"), timeout_s=1.5)
        assert time.monotonic() - start < 10
        assert worker.run(SpiceJob(DIVIDER)).vectors[0]["b"][0] == pytest.approx(0.75, rel=1e-9)


def test_a_crashed_worker_raises_and_is_replaced():
    with SpiceWorker() as worker:
        worker.run(SpiceJob(DIVIDER))
        first = worker.pid
        killer = threading.Timer(1.0, lambda: worker._process.kill())
        killer.start()
        with pytest.raises(SpiceError, match="crashed"):
            worker.run(SpiceJob(SLOW, label="crash victim"), timeout_s=60)
        killer.join()
        assert worker.run(SpiceJob(DIVIDER)).vectors[0]["b"][0] == pytest.approx(0.75, rel=1e-9)
        assert worker.pid != first


def test_workers_are_recycled_after_max_jobs():
    with SpiceWorker(max_jobs=2) as worker:
        pids = []
        for _ in range(3):
            worker.run(SpiceJob(DIVIDER))
            pids.append(worker.pid)
    assert pids[0] == pids[1] != pids[2]


def test_no_convergence_raises_naming_the_design_after_every_aid():
    with SpiceWorker() as worker:
        with pytest.raises(SpiceError, match="impossible source.*did not converge with any aid"):
            worker.run(SpiceJob(IMPOSSIBLE, label="impossible source"), timeout_s=120)


def test_bad_deck_is_reported_without_convergence_retries():
    with SpiceWorker() as worker:
        with pytest.raises(SpiceError, match="bad deck: ngspice rejected the deck.*unknown subckt"):
            worker.run(SpiceJob("* bad\nV1 a 0 DC 1\nX1 a 0 nosuch\n.op\n.end\n", label="bad deck"))


SHORT_OF_MEMORY = """
import resource, runpy, sys
server = runpy.run_path(sys.argv[1])
session = server["Session"]()
size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (size + 150 * 2**20, resource.RLIM_INFINITY))
try:
    session.run(open(sys.argv[2]).read(), [()], None, "capped worker", lambda done: None)
except server["JobFailed"] as exc:
    print(exc)
"""


def test_klu_short_of_memory_is_refused_with_its_reason_and_no_retries(tmp_path):
    """ngspice reports a KLU factor it could not allocate as 'singular matrix: check node 0' (ground;
    how a 1R 1024x1024 array fails, its allocation size overflowing 32 bits). Here a real allocation
    fails: the child's address space is capped 150 MB above its size, enough to parse a 1R 128x128
    deck but not for the ~230 MB KLU reserves for its factors. The job fails at once with the
    reason, without trying the convergence aids."""
    xb = circuitsim.Crossbar(conductance=np.full((128, 128), 1e-5), r_row=2.0, r_col=2.0)
    deck = tmp_path / "deck.cir"
    deck.write_text(circuitsim.netlist(xb, np.ones(128)))
    done = subprocess.run([sys.executable, "-c", SHORT_OF_MEMORY, server.__file__, str(deck)], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.startswith("capped worker: ngspice's KLU solver could not allocate the LU factors"), \
        done.stdout + done.stderr
    assert "aid" not in done.stdout


def test_simulate_accepts_a_given_worker():
    xb = circuitsim.Crossbar(conductance=np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0)
    with SpiceWorker() as worker:
        res = circuitsim.simulate(xb, [0.1, 0.2], engine="spice", worker=worker)
        assert worker.pid is not None
    assert_close(res.column_currents, circuitsim.simulate(xb, [0.1, 0.2], engine="numpy").column_currents,
                 rtol=1e-9, what="column currents")


# --- the protocol: one call's answer never reaches the next call (issue 12) ---

def _two_designs(size: int):
    """Two crossbars of one shape whose column currents differ by a factor of two."""
    g = np.random.default_rng(12).uniform(1e-5, 1e-4, (size, size))
    return (circuitsim.Crossbar(conductance=g, r_row=1.0, r_col=1.0),
            circuitsim.Crossbar(conductance=g / 2, r_row=1.0, r_col=1.0))


def _assert_is_answer_of(res, xb, v):
    assert_close(res.column_currents, circuitsim.simulate(xb, v, engine="numpy").column_currents, rtol=1e-7,
                 what="column currents against the design's own numpy answer")


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 0, -1.0, True, "5", 1j])
def test_a_bad_time_limit_is_refused_before_anything_runs(bad):
    a, b = _two_designs(2)
    with SpiceWorker() as worker:
        with pytest.raises(ValueError, match="timeout_s must be a positive finite number"):
            circuitsim.simulate(a, [0.1, 0.2], engine="spice", worker=worker, timeout_s=bad)
        with pytest.raises(ValueError, match="timeout_s must be a positive finite number"):
            worker.run(SpiceJob(DIVIDER), timeout_s=bad)
        assert worker.pid is None  # refused before a child was even started
        _assert_is_answer_of(circuitsim.simulate(b, [0.1, 0.2], engine="spice", worker=worker), b, [0.1, 0.2])
    with pytest.raises(ValueError, match="timeout_s"):
        SpiceWorker(timeout_s=bad)


def test_ctrl_c_during_a_job_discards_the_worker_and_the_next_call_gets_its_own_answer():
    """A real SIGINT to this process while a 64x64 batch is out; the next call's answer is its own
    and it finishes within its own limit (it used to get the old answer, or deadlock)."""
    a, b = _two_designs(64)
    batch = np.random.default_rng(1).uniform(0, 0.3, (40, 64))
    with SpiceWorker() as worker:
        worker.run(SpiceJob(DIVIDER))  # a warm child, idle until the batch arrives
        first = worker.pid
        idle = _cpu_ticks(first)

        def interrupt_once_the_child_works():
            while _cpu_ticks(first) < idle + 5:  # the child has spent 50 ms on the batch: it is out
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)

        interrupt = threading.Thread(target=interrupt_once_the_child_works)
        interrupt.start()
        with pytest.raises(KeyboardInterrupt):
            circuitsim.simulate(a, batch, engine="spice", worker=worker, timeout_s=120)
        interrupt.join()
        assert worker.pid is None and _gone_within(first, 5)
        start = time.monotonic()
        res = circuitsim.simulate(b, batch[0], engine="spice", worker=worker, timeout_s=30)
        assert time.monotonic() - start < 30
    _assert_is_answer_of(res, b, batch[0])


def test_an_error_while_a_job_is_out_discards_the_worker():
    """Here the progress callback fails after the job was sent: the answer still on its way
    must not be read as the next job's."""
    a, b = _two_designs(16)
    batch = np.random.default_rng(2).uniform(0, 0.3, (200, 16))

    def failing(done):
        raise RuntimeError("display gone")

    with SpiceWorker() as worker:
        with pytest.raises(RuntimeError, match="display gone"):
            worker.run(SpiceJob(circuitsim.netlist(a, batch[0]), tuple([()] * 200), probes=("b0c0",)),
                       progress=failing)
        assert worker.pid is None
        _assert_is_answer_of(circuitsim.simulate(b, batch[0], engine="spice", worker=worker), b, batch[0])


def test_an_answer_to_another_job_is_refused_not_returned():
    """A stale job left in the child (as an interrupted caller would leave it) answers first:
    the worker refuses that answer, discards the child, and the next call is answered right."""
    a, b = _two_designs(4)
    with SpiceWorker() as worker:
        worker.run(SpiceJob(DIVIDER))
        server.send_message(worker._sock, ("job", 999, circuitsim.netlist(a, [0.1] * 4), ((),), None, False, "stale"))
        with pytest.raises(SpiceError, match="answered job 999"):
            worker.run(SpiceJob(circuitsim.netlist(b, [0.1] * 4), label="fresh"))
        _assert_is_answer_of(circuitsim.simulate(b, [0.1] * 4, engine="spice", worker=worker), b, [0.1] * 4)


# --- the child dies with its parent, however early (issue 12) ---

PARENT = """
import os, signal, sys
from circuitsim.spice.worker import SpiceJob, SpiceWorker
worker = SpiceWorker()
worker._start()
print(worker.pid, flush=True)
if sys.argv[1] == "at-once":
    os.kill(os.getpid(), signal.SIGKILL)
worker.run(SpiceJob({slow!r}), timeout_s=600)
"""


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("when", ["at-once", "during-a-job"])
def test_kill_9_of_the_parent_leaves_no_ngspice_child(when, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(slow=SLOW))
    parent = subprocess.Popen([sys.executable, str(script), when], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    child = int(parent.stdout.readline())
    if when == "during-a-job":
        time.sleep(1.0)  # the child has loaded ngspice and runs the slow transient
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    parent.stdout.close()
    assert parent.returncode == -signal.SIGKILL
    if not _gone_within(child, 10):
        os.kill(child, signal.SIGKILL)
        pytest.fail(f"the ngspice child {child} outlived its parent killed with SIGKILL ({when})")


def test_long_batches_show_progress_when_asked(capsys):
    """The worker reports runs done while a batch is out; simulate(progress=True) shows a tqdm bar,
    and by default (stderr not a terminal here) nothing."""
    a, _ = _two_designs(8)
    batch = np.random.default_rng(3).uniform(0, 0.3, (150, 8))
    seen = []
    with SpiceWorker() as worker:
        runs = 4000  # long enough (> 1 s on an idle machine) for reports every 0.25 s
        worker.run(SpiceJob(circuitsim.netlist(a, batch[0]), tuple([()] * runs), probes=("b0c0",)),
                   progress=seen.append)
        assert seen and seen == sorted(seen) and seen[0] < runs, f"progress reports: {seen}"
        circuitsim.simulate(a, batch[:60], engine="spice", worker=worker)
        assert capsys.readouterr().err == ""
        shown = circuitsim.simulate(a, batch, engine="spice", worker=worker, progress=True)
    err = capsys.readouterr().err
    assert "ngspice" in err and "150/150" in err, err
    _assert_is_answer_of(shown, a, batch)
