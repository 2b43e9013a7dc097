"""The `spectheory` command: compare on built-in data and on user files; audit; errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

import spectheory
from spectheory._cli import main


def test_compare_builtin(tmp_path, capsys):
    out = tmp_path / "c.png"
    assert main(["compare", "--max-n", "3", "--example", "zipf-shifted", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for name in spectheory.rules():
        assert f"| {name} |" in text
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the single-draft acceptance printed is sum(min(p, q)) of the example
    from spectheory._examples import examples

    p, q, _ = examples()["zipf-shifted"]
    assert f"| single | {np.minimum(p, q).sum():.4f} |" in text


def test_compare_user_files(tmp_path, capsys):
    p, q = tmp_path / "p.json", tmp_path / "q.npy"
    p.write_text(json.dumps([0.5, 0.3, 0.2]))
    np.save(q, np.array([0.2, 0.3, 0.5]))
    assert main(["compare", "--p", str(p), "--q", str(q), "--max-n", "2", "--out", ""]) == 0
    assert "| single | 0.7000 |" in capsys.readouterr().out


def test_compare_rejects_bad_input(tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps([0.5, 0.6]))
    with pytest.raises(SystemExit, match="does not sum to 1"):
        main(["compare", "--p", str(p), "--q", str(p), "--out", ""])
    with pytest.raises(SystemExit, match="unknown example"):
        main(["compare", "--example", "nope", "--out", ""])
    with pytest.raises(SystemExit, match="unknown rule"):
        main(["compare", "--rules", "nope", "--out", ""])


def test_audit_command(tmp_path, capsys):
    p, q = tmp_path / "p.json", tmp_path / "q.json"
    p.write_text(json.dumps([0.5, 0.3, 0.2]))
    q.write_text(json.dumps([0.2, 0.3, 0.5]))
    assert main(["audit", "single", "--p", str(p), "--q", str(q)]) == 0
    assert "lossless" in capsys.readouterr().out


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "spectheory", "rules"], capture_output=True, text=True, check=True)
    assert "single" in res.stdout
