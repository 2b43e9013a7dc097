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


# -- files and options: every error names the option, the file and the fault -----------------------


@pytest.mark.parametrize("content,fault", [("[0.5, 0.5", "is not valid JSON"), ('{"a": 1}', "JSON list of numbers"),
                                           ('["a", "b"]', "could not convert"), ("[[0.5, 0.5]]", "1-d"),
                                           ("[true, false]", "real numbers")],
                         ids=["syntax", "object", "strings", "2-d", "bools"])
def test_bad_json_names_the_file(tmp_path, content, fault):
    bad, ok = tmp_path / "bad.json", tmp_path / "ok.json"
    bad.write_text(content)
    ok.write_text(json.dumps([0.5, 0.5]))
    with pytest.raises(SystemExit, match=f"--p: .*bad.json.*{fault}|--p: .*{fault}.*bad.json"):
        main(["audit", "single", "--p", str(bad), "--q", str(ok)])
    with pytest.raises(SystemExit, match=f"--q: .*bad.json"):
        main(["compare", "--p", str(ok), "--q", str(bad), "--out", ""])


def test_bad_npy_and_laws_name_the_file(tmp_path):
    junk, ok, three = tmp_path / "junk.npy", tmp_path / "ok.json", tmp_path / "three.json"
    junk.write_bytes(b"not an npy file")
    ok.write_text(json.dumps([0.5, 0.5]))
    three.write_text(json.dumps([0.2, 0.3, 0.5]))
    with pytest.raises(SystemExit, match="--p: cannot read a probability vector from .*junk.npy"):
        main(["audit", "single", "--p", str(junk), "--q", str(ok)])
    unnorm = tmp_path / "unnorm.json"
    unnorm.write_text(json.dumps([0.5, 0.6]))
    with pytest.raises(SystemExit, match=r"--p \(.*unnorm.json\): does not sum to 1"):
        main(["audit", "single", "--p", str(unnorm), "--q", str(ok)])
    with pytest.raises(SystemExit, match=r"--p \(.*ok.json\) and --q \(.*three.json\) must have the same vocabulary"):
        main(["audit", "single", "--p", str(ok), "--q", str(three)])
    with pytest.raises(SystemExit, match="--q: no such file"):
        main(["audit", "single", "--p", str(ok), "--q", str(tmp_path / "missing.json")])


def test_out_is_checked_before_any_computation(tmp_path, monkeypatch):
    from spectheory import _cli

    def never(args):
        raise AssertionError("the computation started")

    monkeypatch.setattr(_cli, "_pairs", never)
    with pytest.raises(SystemExit, match="--out: the directory .*missing does not exist"):
        main(["compare", "--out", str(tmp_path / "missing" / "c.png")])
    with pytest.raises(SystemExit, match="--out: .* is a directory"):
        main(["compare", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--out: unsupported image format '.txt'"):
        main(["compare", "--out", str(tmp_path / "c.txt")])
    # a Monte-Carlo size too small for the acceptance audit is refused before computing too
    with pytest.raises(SystemExit, match="--mc-samples: 10 samples are too few"):
        main(["compare", "--mc-samples", "10", "--out", ""])


@pytest.mark.parametrize("argv,fault", [
    (["compare", "--max-n", "0"], "--max-n must be >= 1"),
    (["compare", "--mc-samples", "0"], "--mc-samples must be >= 1"),
    (["compare", "--max-n", "two"], "invalid int value"),
    (["audit", "single", "--p", "x", "--q", "y", "--n", "0"], "--n must be >= 1")],
    ids=["max-n", "mc-samples", "max-n-text", "n"])
def test_bad_options_are_refused(argv, fault, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and fault in capsys.readouterr().err


def test_bad_rule_lists_are_refused():
    with pytest.raises(SystemExit, match="--rules: expected comma-separated rule names"):
        main(["compare", "--rules", "single,,rsd", "--out", ""])


def test_a_plugin_registering_a_wrong_rule_is_refused_and_rules_still_lists(tmp_path, capsys):
    plugin = tmp_path / "wrong_plugin.py"
    plugin.write_text("import spectheory\nfrom spectheory import drafts, verify\n"
                      "spectheory.register(spectheory.Rule('plugin-wrong', drafts.IID, verify.RSD))\n")
    with pytest.raises(SystemExit, match=r"--plugin .*wrong_plugin.py: ValueError: verifier: rule 'plugin-wrong'"):
        main(["rules", "--plugin", str(plugin)])
    assert "plugin-wrong" not in spectheory.rules()
    capsys.readouterr()
    assert main(["rules"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == spectheory.rules()
