"""Every notebook in notebooks/ executes top to bottom without errors."""

from __future__ import annotations

import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    import nbformat  # a dependency of nbclient

    nb = nbformat.read(path, as_version=4)
    # The "python3" kernel spec comes from the ipykernel of this environment; jupyter_client
    # launches it with sys.executable, i.e. the interpreter running the tests (the venv's).
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
