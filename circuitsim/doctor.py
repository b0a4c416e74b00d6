"""`circuitsim doctor`: what circuitsim found on this machine, and how to fix what is missing."""
from __future__ import annotations

import shutil
import subprocess
from importlib import metadata

from circuitsim.spice.worker import SpiceJob, SpiceWorker


def _ngspice_cli_version() -> str:
    exe = shutil.which("ngspice")
    if exe is None:
        return "not found"
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30).stdout
    return " ".join(line.strip("* ") for line in out.splitlines() if "ngspice-" in line or "KLU" in line)


def report() -> tuple[list[str], bool]:
    """Lines to print and whether everything needed works."""
    lines, ok = [], True
    for pkg in ("numpy", "scipy", "PySpice", "h5py"):
        try:
            lines.append(f"{pkg}: {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{pkg}: MISSING (pip install -e .)")
            ok = False
    lines.append(f"ngspice executable: {_ngspice_cli_version()}")
    deck = "* doctor\n.options klu\nV1 a 0 DC 1\nR1 a 0 1k\n.op\n.end\n"
    try:
        with SpiceWorker(timeout_s=60) as worker:
            out = worker.run(SpiceJob(deck, label="doctor deck"))
        current = -out.vectors[0]["v1#branch"][0]
        lines.append(f"libngspice through PySpice: ngspice {out.ngspice_version}, "
                     f"1 V across 1 kΩ gives {current:.3e} A")
        if out.ngspice_version != "46":
            lines.append("WARNING: ngspice 46 (with KLU) is expected; run scripts/setup.sh "
                         "(adds bookworm-backports and installs libngspice0-dev from it)")
    except Exception as exc:
        ok = False
        lines.append(f"libngspice through PySpice: FAILED: {exc}")
        lines.append("fix: apt-get install libngspice0-dev (needs libngspice.so), or set NGSPICE_LIBRARY_PATH")
    return lines, ok
