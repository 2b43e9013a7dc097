"""The README's self-contained code examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
# blocks that define everything they use (the others are fragments with placeholder names)
RUNNABLE = [b for b in BLOCKS if b.startswith("import") and "load_shipped_models" not in b]


def test_readme_has_examples():
    assert len(RUNNABLE) >= 4


@pytest.mark.parametrize("i", range(len(RUNNABLE)))
def test_readme_example_runs(i):
    exec(compile(RUNNABLE[i], f"README block {i}", "exec"), {})
