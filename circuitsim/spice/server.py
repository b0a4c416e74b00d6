"""The ngspice worker process, and the message format both ends of its socket speak.

This file is the child's whole program: SpiceWorker starts it as a fresh interpreter with
`runpy.run_path`, so it must import nothing from circuitsim (importing the package would cost
the child ~0.3 s of unrelated modules). It needs only the standard library, numpy and PySpice.

Messages are length-prefixed pickles of plain tuples (never circuitsim classes):
  parent -> child: ("job", job_id, deck, runs, probes, progress, label) or ("stop",)
  child -> parent: ("progress", job_id, runs_done), then ("ok", job_id, answer) or
                   ("error", job_id, text)
Every answer carries the id of its job, so the parent can tell a stale answer from its own.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import re
import signal
import socket
import struct
import sys
import time

import numpy as np

HEADER = struct.Struct("<Q")  # payload length in bytes
CONVERGENCE_AIDS = (
    "",  # ngspice's own: Newton, then dynamic gmin stepping, then source stepping
    "gminsteps=200 srcsteps=200 itl1=1000 itl6=1000",  # finer stepping, more iterations
    "method=gear gminsteps=500 srcsteps=500 itl1=5000 itl6=5000",
)
_FAILURE = re.compile(r"(^|\n)\s*(error|.*simulation\(s\) aborted|.*iteration limit reached|.*timestep too small)",
                      re.IGNORECASE)
PROGRESS_PERIOD_S = 0.25  # at most this often a progress message
_LINE_BREAKS = re.compile(rb"[\r\n]+")
_NEWLINE_TO_NUL = bytes.maketrans(b"\n", b"\0")
# KLU failing for a reason other than a singular pivot: ngspice then names ground, node 0. Its LU
# factors could not be allocated: ngspice 46's KLU sizes their first allocation at 10x AMD's fill
# estimate in 32-bit units (klu.c, KLU_kernel_factor), which overflows for circuits of ~2 million
# nodes, or memory ran out. No convergence aid or pivot option can help.
_KLU_NO_MEMORY = re.compile(r"singular matrix:\s+check node 0\s*$", re.MULTILINE)
KLU_NO_MEMORY = ("ngspice's KLU solver could not allocate the LU factors of this circuit (it reports 'singular "
                 "matrix: check node 0', i.e. ground: not a singular pivot). ngspice 46 sizes that allocation at 10x "
                 "its fill estimate in 32-bit units, which overflows at ~2 million nodes (1R arrays from about "
                 "1024x1024), or memory ran out; the numpy engine solves arrays this large")


def send_message(sock: socket.socket, message) -> None:
    """One message; the caller sets the socket's timeout (sendall honours it over the whole call)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(HEADER.pack(len(data)) + data)


def recv_message(sock: socket.socket, deadline: float | None = None):
    """One message, or EOFError if the other end has gone; socket.timeout past `deadline`
    (time.monotonic() seconds; None waits for ever)."""
    size = HEADER.unpack(_recv_exactly(sock, HEADER.size, deadline))[0]
    return pickle.loads(_recv_exactly(sock, size, deadline))


def _recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    done = 0
    while done < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("time limit reached")
            sock.settimeout(remaining)
        got = sock.recv_into(view[done:])
        if got == 0:
            raise EOFError("the other end closed the connection")
        done += got
    return buffer


class JobFailed(Exception):
    """A job ngspice could not answer; its text goes back to the parent."""


def with_options(deck: str, extra: str) -> str:
    """The deck with extra .options just before its .end line: ngspice takes the last value of an
    option, so an aid adds to the deck's own options (its tolerances stay)."""
    if not extra:
        return deck
    head, end, tail = deck.rpartition("\n.end")
    if not end:
        return f"{deck}\n.options {extra}\n"
    return f"{head}\n.options {extra}{end}{tail}"


class Session:
    """ngspice (one NgSpiceShared per process) running jobs."""

    def __init__(self):
        import logging

        logging.getLogger("PySpice").setLevel(logging.CRITICAL)  # ngspice notes are not errors
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

        self.ng = NgSpiceShared.new_instance()
        self.lib = self.ng._ngspice_shared  # PySpice's cffi handle: read vectors without plot() objects
        self.ffi = ffi
        self.version = str(self.ng.ngspice_version)

    def command(self, command: str) -> str:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError

        try:
            self.ng.exec_command(command)
        except NgSpiceCommandError:
            pass  # PySpice treats any stderr note as an error; we judge the output ourselves
        return self.ng.stdout + "\n" + self.ng.stderr

    def _analyse(self) -> str:
        """Run the deck's analysis; the name of the plot it made."""
        before = self.ffi.string(self.lib.ngSpice_CurPlot()).decode()
        text = self.command("run")
        plot = self.ffi.string(self.lib.ngSpice_CurPlot()).decode()
        if plot == before or _FAILURE.search(text):
            raise JobFailed(text.strip()[-2000:])
        return plot

    def _vector(self, plot: str, name: str) -> np.ndarray | None:
        """A copy of one real vector (ngGet_Vec_Info's struct is overwritten by the next call)."""
        info = self.lib.ngGet_Vec_Info(f"{plot}.{name}".encode())
        if info == self.ffi.NULL or info.v_realdata == self.ffi.NULL:
            return None
        return np.frombuffer(self.ffi.buffer(info.v_realdata, info.v_length * 8), dtype=np.float64).copy()

    def _all_vectors(self, plot: str) -> dict[str, np.ndarray]:
        names = self.lib.ngSpice_AllVecs(plot.encode())
        out = {}
        k = 0
        while names[k] != self.ffi.NULL:
            name = self.ffi.string(names[k]).decode()
            vector = self._vector(plot, name)
            if vector is not None:
                out[name.lower()] = vector
            k += 1
        return out

    def _probe(self, probes: list[bytes]) -> np.ndarray:
        """(probes, points) values of the named vectors of the current plot. One lookup each by
        bare name; an .op's single values are read as scalars (no array per vector)."""
        out = None
        missing = []
        for k, name in enumerate(probes):
            info = self.lib.ngGet_Vec_Info(name)
            if info == self.ffi.NULL or info.v_realdata == self.ffi.NULL:
                missing.append(name.decode())
                continue
            if out is None:
                out = np.full((len(probes), info.v_length), np.nan)
            if info.v_length != out.shape[1]:
                raise JobFailed(f"vector {name.decode()} has {info.v_length} points, not {out.shape[1]}")
            if out.shape[1] == 1:
                out[k, 0] = info.v_realdata[0]
            else:
                out[k] = np.frombuffer(self.ffi.buffer(info.v_realdata, info.v_length * 8), dtype=np.float64)
        if missing:
            raise JobFailed(f"ngspice's answer has no vector for {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''}")
        return out

    def run(self, deck: str, runs, probes, label: str, report) -> dict:
        """All runs of one job under the first convergence aid that succeeds. The last plot and
        the circuit stay loaded: the caller cleans up after sending the answer."""
        errors = []
        for aid in CONVERGENCE_AIDS:
            if self._load(with_options(deck, aid)):
                raise JobFailed(f"{label}: ngspice rejected the deck: {self.ng.stdout[-2000:]}")
            if _FAILURE.search(self.ng.stderr):  # e.g. an unknown subckt: no aid can help
                raise JobFailed(f"{label}: ngspice rejected the deck: {self.ng.stderr[-2000:]}")
            try:
                return {"values": self._runs(runs, probes, label, report), "ngspice_version": self.version,
                        "aid": aid}
            except JobFailed as exc:
                if _KLU_NO_MEMORY.search(str(exc)):
                    raise JobFailed(f"{label}: {KLU_NO_MEMORY}") from None
                errors.append(f"[options '{aid or 'default'}'] {exc}")
                self.cleanup()
        raise JobFailed(f"{label}: ngspice did not converge with any aid "
                        f"({', '.join(a or 'default' for a in CONVERGENCE_AIDS)}):\n" + "\n".join(errors))

    def _load(self, deck: str) -> bool:
        """ngSpice_Circ of the deck's lines; True if ngspice reported an error. The lines go as
        one buffer (newlines turned into NULs) and an array of pointers into it, built in bulk
        without a Python string per line (a 1024x1024 deck has 4e6 lines; ngspice copies them)."""
        text = deck.encode()
        if b"\r" in text or b"\n\n" in text:  # blank lines and CR LF: one newline between lines
            text = _LINE_BREAKS.sub(b"\n", text)
        text = text.strip(b"\n") + b"\n\n"
        ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("\n"))
        lines = text.translate(_NEWLINE_TO_NUL)
        address = int(self.ffi.cast("uintptr_t", self.ffi.from_buffer("char[]", lines)))
        pointers = np.zeros(ends.size + 1, dtype=np.uint64)  # the last line is empty, then NULL
        pointers[0] = address
        pointers[1:-1] = address + ends[:-1] + 1
        self.ng.clear_output()
        rc = self.lib.ngSpice_Circ(self.ffi.from_buffer("char *[]", pointers))
        return bool(rc) or self.ng._error_in_stdout

    def _runs(self, runs, probes, label: str, report):
        names = None if probes is None else [name.encode() for name in probes]
        answers = []
        plot = None
        for done, alters in enumerate(runs):
            if plot is not None:
                self.command(f"destroy {plot}")  # a batch's plots would otherwise pile up
            for command in alters:
                if _FAILURE.search(self.command(command)):
                    raise JobFailed(f"{label}: ngspice rejected '{command}'")
            plot = self._analyse()
            answers.append(self._all_vectors(plot) if probes is None else self._probe(names))
            report(done + 1)
        if probes is not None:
            answers = _stack(answers)
            finite = all(np.isfinite(a).all() for a in answers)
        else:
            finite = all(np.isfinite(v).all() for answer in answers for v in answer.values())
        if not finite:
            raise JobFailed("ngspice returned non-finite values")
        return answers

    def cleanup(self) -> None:
        """Drop the loaded circuit and every plot (keeps the process's memory flat between jobs)."""
        self.command("destroy all")
        self.command("remcirc")


def _stack(answers: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """(runs, probes, points) when every run has as many points, else the list."""
    if len({a.shape for a in answers}) == 1:
        return np.stack(answers)
    return answers


def die_with_parent(parent_pid: int, kernel_signal: bool = True) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kernel_signal), and exit now if it
    already has. (The parent may die between fork and prctl: then our parent is no longer parent_pid.)"""
    if kernel_signal and sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def serve(fd: int, parent_pid: int) -> None:
    """Answer jobs arriving on socket `fd` until told to stop or the parent is gone (EOF)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    sock = socket.socket(fileno=fd)
    session = Session()
    while True:
        try:
            message = recv_message(sock)
        except EOFError:
            return
        if message[0] != "job":
            return
        _, job_id, deck, runs, probes, progress, label = message
        last = [time.monotonic()]

        def report(done: int) -> None:
            if progress and time.monotonic() - last[0] > PROGRESS_PERIOD_S:
                last[0] = time.monotonic()
                send_message(sock, ("progress", job_id, done))

        try:
            answer = ("ok", job_id, session.run(deck, runs, probes, label, report))
        except JobFailed as exc:
            answer = ("error", job_id, str(exc))
        except Exception as exc:  # anything else still goes back as this job's error
            answer = ("error", job_id, f"{label}: {type(exc).__name__}: {exc}")
        try:
            send_message(sock, answer)
        except OSError:
            return
        session.cleanup()  # off the critical path: the parent already has its answer


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
