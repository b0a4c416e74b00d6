"""The README's example and the tutorials in notebooks/ run end to end (real ngspice, real HDF5),
and the notebooks show their figures as pictures."""
import re
import runpy
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_readme_example_runs(tmp_path, capsys):
    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")
    first = capsys.readouterr().out.splitlines()[0]
    assert float(first) < 1e-9, f"README: spice vs numpy differ by {first} A"


def test_every_tutorial_is_here():
    assert len(NOTEBOOKS) >= 5, [n.name for n in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_figures(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}" if errors else ""
    as_text = [o["data"]["text/plain"] for o in outputs
               if "Figure" in o.get("data", {}).get("text/plain", "") and "image/png" not in o["data"]]
    assert not as_text, f"{path.name}: a figure shown as text, not a picture: {as_text[0]}"
    draws = any("plot" in cell.source for cell in nb.cells if cell.cell_type == "code")
    pictures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert pictures >= draws, f"{path.name}: draws a figure but shows {pictures} pictures"
