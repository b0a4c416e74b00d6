"""Writing a file so that no reader ever sees half of it (bottom layer: imports nothing from the package)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(out: Path, write: Callable) -> None:
    """Call write(binary file) on a hidden file beside `out`, then rename it to `out`: a reader
    never sees half a file, and the hidden file is removed whatever happens."""
    out = Path(os.path.realpath(out))  # through a symbolic link to its target, which stays a link's target
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open(partial, "wb") as fh:
            write(fh)
        partial.replace(out)
    except OSError as exc:  # e.g. the disk is full: name the file being written
        raise OSError(exc.errno, exc.strerror, str(out)) from None
    finally:
        partial.unlink(missing_ok=True)
