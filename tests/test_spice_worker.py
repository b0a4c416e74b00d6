"""The ngspice worker process: time limit, crash isolation, recycling, convergence failures."""
import threading
import time

import numpy as np
import pytest

import circuitsim
from circuitsim.spice.worker import SpiceError, SpiceJob, SpiceTimeout, SpiceWorker

DIVIDER = "* divider\n.options klu\nV1 a 0 DC 1\nR1 a b 1k\nR2 b 0 3k\n.op\n.end\n"
SLOW = "* slow\n.options klu\nV1 a 0 SIN(0 1 1k)\nR1 a b 1k\nC1 b 0 1u\n.tran 1n 10 0 1n\n.end\n"
# 1 A forced into a node that can sink at most 1 mA: no DC solution exists
# (gmin=0: otherwise ngspice 39's transient op settles where 1 A flows through gmin, at 1e12 V)
IMPOSSIBLE = "* impossible\n.options klu gmin=0\nI1 0 a DC 1\nB1 a 0 I = 1e-3*tanh(V(a))\n.op\n.end\n"


def test_divider_runs_in_a_child_process():
    with SpiceWorker() as worker:
        out = worker.run(SpiceJob(DIVIDER))
        assert worker.pid is not None
    assert out.vectors[0]["b"][0] == pytest.approx(0.75, rel=1e-12)
    assert out.ngspice_version.isdigit()


def test_time_limit_kills_a_hung_job_and_the_next_job_works():
    with SpiceWorker() as worker:
        start = time.monotonic()
        with pytest.raises(SpiceTimeout, match="slow design.*time limit of 1.5 s"):
            worker.run(SpiceJob(SLOW, label="slow design"), timeout_s=1.5)
        assert time.monotonic() - start < 10
        assert worker.run(SpiceJob(DIVIDER)).vectors[0]["b"][0] == pytest.approx(0.75)


def test_a_crashed_worker_raises_and_is_replaced():
    with SpiceWorker() as worker:
        worker.run(SpiceJob(DIVIDER))
        first = worker.pid
        killer = threading.Timer(1.0, lambda: worker._process.kill())
        killer.start()
        with pytest.raises(SpiceError, match="crashed"):
            worker.run(SpiceJob(SLOW, label="crash victim"), timeout_s=60)
        killer.join()
        assert worker.run(SpiceJob(DIVIDER)).vectors[0]["b"][0] == pytest.approx(0.75)
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


def test_simulate_accepts_a_given_worker():
    xb = circuitsim.Crossbar(conductance=np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0)
    with SpiceWorker() as worker:
        res = circuitsim.simulate(xb, [0.1, 0.2], engine="spice", worker=worker)
        assert worker.pid is not None
    np.testing.assert_allclose(res.column_currents, circuitsim.simulate(xb, [0.1, 0.2], engine="numpy").column_currents,
                               rtol=1e-9)
