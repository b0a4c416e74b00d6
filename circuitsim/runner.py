"""Killable child processes that compute one call at a time, and die with their parent.

Why not concurrent.futures.ProcessPoolExecutor: it cannot stop one task past its time limit
(killing one worker breaks the whole pool), and its spawned workers learned their parent's
pid only after their imports, so a sweep killed in its first second left them (and their
ngspice children) running for good. A runner is a fresh interpreter given its parent's pid
on the command line. Once it has imported the package, before any work, it asks the kernel
to kill it when the parent dies (PR_SET_PDEATHSIG, Linux), then checks that its parent is
still that pid (the parent may have died before the request), and a thread watches the pid
from then on (other systems, and parents that are not one long-lived thread: the kernel
signal follows the thread that started the child).

The child ignores SIGINT: on Ctrl-C its parent decides what becomes of the call in flight.
Messages are spice.server's length-prefixed pickles (one framing for every child process).
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from circuitsim.errors import PointTimeout, WorkerLostError
from circuitsim.spice.server import die_with_parent as exit_with_parent
from circuitsim.spice.server import recv_message, send_message

PARENT_POLL_S = 0.2


def die_with_parent(parent_pid: int, kernel_signal: bool = True) -> None:
    """End this process (at once, by SIGKILL where the kernel can) when `parent_pid` is gone; a
    thread watches the parent too, for where the kernel signal is not asked for."""
    exit_with_parent(parent_pid, kernel_signal)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def serve(fd: int) -> None:
    """Entry point of the child: answer (function, argument) calls arriving on socket `fd`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    send_message(sock, ("ready", os.getpid()))
    while True:
        try:
            call = recv_message(sock)
        except EOFError:  # the parent closed its end (or died)
            return
        if call is None:
            return
        function, argument = call
        try:
            send_message(sock, ("ok", function(argument)))
        except Exception as exc:
            send_message(sock, ("error", f"{type(exc).__name__}: {exc}"))


def time_limit_error(limit_s: float) -> PointTimeout:
    return PointTimeout(f"exceeded the time limit of {limit_s:g} s; its worker process was killed")


class ChildRunner:
    """One child process running calls one at a time.

    kernel_signal: ask the kernel to kill the child when the thread that starts it ends (use
    it only from a thread that lives as long as the process, such as the main thread).
    env: extra environment variables for the child (and the processes it starts).
    """

    def __init__(self, *, kernel_signal: bool = True, env: dict[str, str] | None = None):
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[1])
        child_env = dict(os.environ) | (env or {})
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, child_env.get("PYTHONPATH")]))
        code = ("import sys; from circuitsim.runner import die_with_parent, serve; "
                f"die_with_parent({os.getpid()}, {kernel_signal}); serve({child.fileno()})")
        self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(child.fileno(),), env=child_env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        child.close()
        self.sock = parent  # blocking: a message is read whole once it starts to arrive
        self.ready = False
        self.busy_since: float | None = None  # time.monotonic() when the call in flight was sent

    def submit(self, function, argument) -> None:
        """Send a call (the runner must be ready and idle); collect its result with receive()."""
        send_message(self.sock, (function, argument))
        self.busy_since = time.monotonic()

    def receive(self):
        """The next message: None for the child's "ready", else the result of the call in flight.

        Raises WorkerLostError if the child died, RuntimeError with the child's error text."""
        try:
            status, payload = recv_message(self.sock)
        except (EOFError, OSError):
            code = self.kill()
            raise WorkerLostError(f"the worker process died (exit code {code}) while computing") from None
        if status == "ready":
            self.ready = True
            return None
        self.busy_since = None
        if status == "error":
            raise RuntimeError(payload)
        return payload

    def call(self, function, argument, timeout_s: float | None):
        """Run one call and return its result; past timeout_s [s] the child is killed and
        PointTimeout raised (start-up time does not count)."""
        while not self.ready:
            self.receive()
        self.submit(function, argument)
        if not select.select([self.sock], [], [], timeout_s)[0]:
            self.kill()
            raise time_limit_error(timeout_s)
        return self.receive()

    def elapsed_s(self) -> float:
        """How long the call in flight has run [s] (0 when idle)."""
        return 0.0 if self.busy_since is None else time.monotonic() - self.busy_since

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def closed(self) -> bool:
        """The runner is done with: killed, died or closed (its socket is closed)."""
        return self.sock.fileno() == -1

    def kill(self) -> int:
        """Stop the child now; returns its exit code."""
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        self.sock.close()
        return code

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child politely (after its call in flight), by force past timeout_s."""
        if self.process.poll() is None and not self.closed:
            try:
                send_message(self.sock, None)
                self.process.wait(timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if not self.closed:
            self.kill()
