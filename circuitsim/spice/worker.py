"""ngspice through PySpice's shared library, always in a child process.

One NgSpiceShared lives in each worker process (ngspice is not re-entrant and grows in
memory), so a SpiceWorker owns a spawned child, recycles it after `max_jobs` jobs, kills
it when a job exceeds its time limit, and turns crashes into exceptions. A job is one
deck plus a list of runs; each run first applies its `alter` commands (new source values)
and then re-runs the deck's analysis, so a batch of input vectors parses the deck once.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from circuitsim.errors import SpiceError, SpiceTimeout

CONVERGENCE_AIDS = (
    "",  # ngspice's own: Newton, then dynamic gmin stepping, then source stepping
    "gminsteps=200 srcsteps=200 itl1=1000 itl6=1000",  # finer stepping, more iterations
    "method=gear gminsteps=500 srcsteps=500 itl1=5000 itl6=5000 reltol=1e-4",
)
_FAILURE = re.compile(r"(^|\n)\s*(error|.*simulation\(s\) aborted|.*iteration limit reached|.*timestep too small)",
                      re.IGNORECASE)


@dataclass(frozen=True)
class SpiceJob:
    """deck: full SPICE text with its analysis line; runs: per run, the `alter` commands to send
    before running (the first run usually has none); label: names the design in errors."""

    deck: str
    runs: tuple[tuple[str, ...], ...] = ((),)
    label: str = "circuit"


@dataclass(frozen=True)
class SpiceOutput:
    """vectors: per run, {vector name: values}; ngspice_version: e.g. '46'; aid: the
    convergence aid that succeeded ('' for none)."""

    vectors: list[dict[str, np.ndarray]]
    ngspice_version: str
    aid: str


def with_options(deck: str, extra: str) -> str:
    """The deck with extra .options after its first line."""
    if not extra:
        return deck
    first, rest = deck.split("\n", 1)
    return f"{first}\n.options {extra}\n{rest}"


class _Session:
    """ngspice inside the worker process."""

    def __init__(self):
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # ngspice notes are not errors
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared

        self.ng = NgSpiceShared.new_instance()
        self.version = str(self.ng.ngspice_version)

    def _command(self, command: str) -> str:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError

        try:
            self.ng.exec_command(command)
        except NgSpiceCommandError:
            pass  # PySpice treats any stderr note as an error; we judge the output ourselves
        return self.ng.stdout + "\n" + self.ng.stderr

    def _analyse(self) -> dict[str, np.ndarray]:
        before = len(self.ng.plot_names)
        text = self._command("run")
        if len(self.ng.plot_names) == before or _FAILURE.search(text):
            raise SpiceError(text.strip()[-2000:])
        plot = self.ng.plot(None, self.ng.last_plot)
        values = {name.lower(): np.array(vec._data, copy=True) for name, vec in plot.items()}
        if not np.isfinite(np.concatenate(list(values.values()))).all():
            raise SpiceError("ngspice returned non-finite values")
        self._command(f"destroy {self.ng.last_plot}")
        return values

    def run(self, job: SpiceJob) -> SpiceOutput:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError

        errors = []
        for aid in CONVERGENCE_AIDS:
            try:
                self.ng.load_circuit(with_options(job.deck, aid))
            except NgSpiceCircuitError as exc:
                raise SpiceError(f"{job.label}: ngspice rejected the deck: {self.ng.stdout[-2000:]}") from exc
            if _FAILURE.search(self.ng.stderr):  # e.g. an unknown subckt: no aid can help
                raise SpiceError(f"{job.label}: ngspice rejected the deck: {self.ng.stderr[-2000:]}")
            try:
                vectors = []
                for alters in job.runs:
                    for command in alters:
                        if _FAILURE.search(self._command(command)):
                            raise SpiceError(f"{job.label}: ngspice rejected '{command}'")
                    vectors.append(self._analyse())
                return SpiceOutput(vectors, self.version, aid)
            except SpiceError as exc:
                errors.append(f"[options '{aid or 'default'}'] {exc}")
            finally:
                self._command("remcirc")
        raise SpiceError(f"{job.label}: ngspice did not converge with any aid "
                         f"({', '.join(a or 'default' for a in CONVERGENCE_AIDS)}):\n" + "\n".join(errors))


def serve(fd: int) -> None:
    """Entry point of the worker process: answer jobs arriving on socket `fd` until told to stop."""
    conn = Connection(fd)
    session = _Session()
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(("ok", session.run(job)))
        except SpiceError as exc:
            conn.send(("error", str(exc)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class SpiceWorker:
    """A child process running ngspice jobs one at a time.

    The child is a fresh interpreter (not a multiprocessing spawn), so it never re-imports
    the caller's __main__ script: plain scripts without a main guard work.

    timeout_s: per-job limit (the child is killed past it); max_jobs: the child is replaced
    after this many jobs, which bounds ngspice's memory growth.
    """

    def __init__(self, timeout_s: float = 600.0, max_jobs: int = 100):
        self.timeout_s = timeout_s
        self.max_jobs = max_jobs
        self._process = None
        self._conn = None
        self._jobs = 0

    def _start(self) -> None:
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from circuitsim.spice.worker import serve; serve({child.fileno()})"],
            pass_fds=(child.fileno(),), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        child.close()
        self._conn = Connection(parent.detach())
        self._jobs = 0

    def close(self) -> None:
        """Stop the child (politely, then by force)."""
        if self._process is None:
            return
        try:
            self._conn.send(None)
            self._process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        self._conn.close()
        self._process = None

    @property
    def pid(self) -> int | None:
        """Process id of the current child (None before the first job)."""
        return None if self._process is None else self._process.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, job: SpiceJob, timeout_s: float | None = None) -> SpiceOutput:
        limit = self.timeout_s if timeout_s is None else timeout_s
        if self._process is None or self._process.poll() is not None or self._jobs >= self.max_jobs:
            self.close()
            self._start()
        self._jobs += 1
        self._conn.send(job)
        if not self._conn.poll(limit):
            self._process.kill()
            self.close()
            raise SpiceTimeout(f"{job.label}: ngspice exceeded the time limit of {limit:g} s and was killed")
        try:
            status, payload = self._conn.recv()
        except EOFError as exc:
            self.close()
            raise SpiceError(f"{job.label}: the ngspice worker process crashed") from exc
        if status == "error":
            raise SpiceError(payload)
        return payload


_shared_worker: SpiceWorker | None = None


def shared_worker() -> SpiceWorker:
    """The worker that `simulate(engine="spice")` uses when none is given (started on first use)."""
    global _shared_worker
    if _shared_worker is None:
        _shared_worker = SpiceWorker()
        atexit.register(_shared_worker.close)
    return _shared_worker


def run_job(job: SpiceJob, worker: SpiceWorker | None = None, timeout_s: float | None = None) -> SpiceOutput:
    """Run one job on `worker` (default: the shared worker)."""
    return (worker or shared_worker()).run(job, timeout_s)
