"""ngspice through PySpice's shared library, always in a child process (server.py).

One NgSpiceShared lives in each worker process (ngspice is not re-entrant and grows in
memory), so a SpiceWorker owns a spawned child, recycles it after `max_jobs` jobs, kills
it when a job exceeds its time limit, and turns crashes into exceptions. A job is one
deck plus a list of runs; each run first applies its `alter` commands (new source values)
and then re-runs the deck's analysis, so a batch of input vectors parses the deck once.
"""
from __future__ import annotations

import atexit
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitsim.errors import SpiceError, SpiceTimeout
from circuitsim.spice import server
from circuitsim.validate import positive_seconds

SERVER_PATH = Path(server.__file__).resolve()
CONVERGENCE_AIDS = server.CONVERGENCE_AIDS  # tried in this order when ngspice does not converge
# The child does no linear algebra in numpy: an OpenBLAS thread pool there would only compete
# with ngspice for the cores.
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class SpiceJob:
    """deck: full SPICE text with its analysis line; runs: per run, the `alter` commands to send
    before running (the first run usually has none); label: names the design in errors;
    probes: names of the vectors to return (lower case, e.g. 'b0c1', 'vin0#branch'), or None
    for every vector of every run."""

    deck: str
    runs: tuple[tuple[str, ...], ...] = ((),)
    label: str = "circuit"
    probes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SpiceOutput:
    """values: for a job with probes, an array (runs, probes, points) (points is 1 for .op);
    otherwise per run {vector name: values}. ngspice_version: e.g. '46'; aid: the convergence
    aid that succeeded ('' for none)."""

    values: np.ndarray | list[dict[str, np.ndarray]]
    ngspice_version: str
    aid: str

    @property
    def vectors(self) -> list[dict[str, np.ndarray]]:
        """Per run {vector name: values} (jobs without probes)."""
        if not isinstance(self.values, list):
            raise TypeError("this job asked for probes: read .values")
        return self.values


class SpiceWorker:
    """A child process running ngspice jobs one at a time.

    The child is a fresh interpreter running circuitsim/spice/server.py alone (not a
    multiprocessing spawn, not the whole package), so it starts fast and never re-imports the
    caller's __main__ script. It dies with its parent (Linux PR_SET_PDEATHSIG, and EOF on its
    socket). Every job has an id and its answer must carry it; a child that may still hold an
    unread answer (time limit, Ctrl-C, any error while a job is out) is killed, never reused.

    timeout_s: per-job limit in seconds (the child is killed past it), None for no limit;
    max_jobs: the child is replaced after this many jobs, which bounds ngspice's memory growth.
    """

    def __init__(self, timeout_s: float | None = 600.0, max_jobs: int = 100):
        self.timeout_s = positive_seconds("timeout_s", timeout_s, allow_none=True)
        self.max_jobs = max_jobs
        self._process = None
        self._sock = None
        self._jobs = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one job at a time, whichever thread asks

    def _start(self) -> None:
        parent, child = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-c",
                 "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                 str(SERVER_PATH), str(child.fileno()), str(os.getpid())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=os.environ | CHILD_ENV)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._sock = parent
        self._jobs = 0

    def close(self) -> None:
        """Stop the child (politely, then by force)."""
        if self._process is None:
            return
        try:
            self._sock.settimeout(5)
            server.send_message(self._sock, ("stop",))
            self._process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._discard()
        else:
            self._sock.close()
            self._process = None

    def _discard(self) -> None:
        """Kill the child and forget it: whatever it was doing or holding is lost."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._sock.close()
        self._process = None

    @property
    def pid(self) -> int | None:
        """Process id of the current child (None before the first job)."""
        return None if self._process is None else self._process.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, job: SpiceJob, timeout_s: float | None = None,
            progress: Callable[[int], None] | None = None) -> SpiceOutput:
        """Run one job. timeout_s: this job's limit (None: the worker's); progress: called with
        the number of runs done, now and then, for long batches."""
        limit = positive_seconds("timeout_s", timeout_s, allow_none=True) or self.timeout_s
        with self._lock:
            if self._process is None or self._process.poll() is not None or self._jobs >= self.max_jobs:
                self.close()
                self._start()
            self._jobs += 1
            job_id = next(self._ids)
            deadline = None if limit is None else time.monotonic() + limit
            try:
                self._sock.settimeout(limit)
                server.send_message(self._sock, ("job", job_id, job.deck, job.runs, job.probes,
                                                 progress is not None, job.label))
                while True:
                    kind, answer_id, payload = server.recv_message(self._sock, deadline)
                    if answer_id != job_id:
                        raise SpiceError(f"{job.label}: the ngspice worker answered job {answer_id} "
                                         f"while job {job_id} was out; it was discarded")
                    if kind != "progress":
                        break
                    progress(payload)
            except TimeoutError:
                self._discard()
                raise SpiceTimeout(f"{job.label}: ngspice exceeded the time limit of {limit:g} s "
                                   "and was killed") from None
            except (EOFError, ConnectionError) as exc:
                self._discard()
                raise SpiceError(f"{job.label}: the ngspice worker process crashed") from exc
            except BaseException:  # Ctrl-C, a failing progress callback, ...: the answer may still come
                self._discard()
                raise
        if kind == "error":
            raise SpiceError(payload)
        return SpiceOutput(payload["values"], payload["ngspice_version"], payload["aid"])


_shared_worker: SpiceWorker | None = None


def shared_worker() -> SpiceWorker:
    """The worker that `simulate(engine="spice")` uses when none is given (started on first use)."""
    global _shared_worker
    if _shared_worker is None:
        _shared_worker = SpiceWorker()
        atexit.register(_shared_worker.close)
    return _shared_worker


def run_job(job: SpiceJob, worker: SpiceWorker | None = None, timeout_s: float | None = None,
            progress: Callable[[int], None] | None = None) -> SpiceOutput:
    """Run one job on `worker` (default: the shared worker)."""
    return (worker or shared_worker()).run(job, timeout_s, progress)
