"""The README's worked extension example: a rule written in one file (docs/examples/
max_ratio_rule.py) and registered with one call is picked up everywhere without touching any
other file of the package.

tests/conftest.py imports the file, as a user's test set-up would, so every suite that iterates
over the registry (the conformance suite, the tree property tests, the decode tests) runs it;
this file checks that it did, and checks the rule itself against independent references.
"""

import itertools
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import spectheory
from spectheory.audit import exact, exact_tree
from spectheory.models import TableCausalLM, TableLM

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "max_ratio_rule.py"


def test_readme_shows_the_example_file_verbatim():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    body = EXAMPLE.read_text()
    code = body[body.index('"""', 3) + 4:]  # the file without its module docstring
    assert any(b.strip() == ("# docs/examples/max_ratio_rule.py\n" + code).strip() for b in blocks)


def test_registered_and_in_every_registry_driven_suite():
    import test_conformance
    from max_ratio_rule import MAX_RATIO

    from spectheory import _registry

    assert "max-ratio" in spectheory.rules() and spectheory.rule("max-ratio") is MAX_RATIO
    # registered with the default audit: the exact audit ran on the small cases and passed
    assert _registry.audit_rule(MAX_RATIO) is MAX_RATIO
    assert any(name == "max-ratio" for name, _ in test_conformance.RULE_NS)
    assert "max-ratio" in test_conformance.JAX_RULES
    assert "max-ratio" in [v if isinstance(v, str) else getattr(v, "name", v)
                           for v in spectheory.decode.supported_verifiers()]


def _selection_law_by_enumeration(p, q, n):
    """Law of the kept draft, enumerating every i.i.d. tuple (an independent route)."""
    V = len(p)
    ratio = [p[i] / q[i] if q[i] > 0 else -1.0 for i in range(V)]
    key = lambda i: (ratio[i], i)  # noqa: E731
    r = np.zeros(V)
    for t in itertools.product(range(V), repeat=n):
        w = np.prod([q[i] for i in t])
        if w > 0:
            r[max(t, key=key)] += w
    return r


@pytest.mark.parametrize("n", [1, 2, 3])
def test_selection_law_and_exact_audit(n):
    from max_ratio_rule import MAX_RATIO, selection_law

    rng = np.random.default_rng(n)
    for _ in range(5):
        p, q = rng.dirichlet(np.full(4, 0.6)), rng.dirichlet(np.full(4, 0.6))
        q[rng.integers(4)] = 0.0
        q /= q.sum()
        with jax.enable_x64(True):
            r = np.asarray(selection_law(jax.numpy.asarray(p), jax.numpy.asarray(q), n)[0])
        np.testing.assert_allclose(r, _selection_law_by_enumeration(p, q, n), atol=1e-14)
        a = exact(MAX_RATIO, p, q, n)
        assert a.max_error < 1e-12
        # never above the optimum for i.i.d. drafts (the transport LP)
        assert a.acceptance <= float(spectheory.bounds.optimal_acceptance(p, q, n, "iid").value) + 1e-12


def test_tree_verification_and_generation():
    from max_ratio_rule import MAX_RATIO

    target = TableLM.random(3, 2, seed=1)
    draft = TableLM.context_free([0.2, 0.3, 0.5])
    audit = exact_tree(target, draft, MAX_RATIO, branching=(2, 1))
    assert audit.max_error < 1e-12
    out = spectheory.generate(jax.random.key(0), TableCausalLM(target), TableCausalLM(draft), [[0], [1, 2]],
                              verifier=MAX_RATIO, max_new_tokens=6, branching=(2, 2))
    assert out.tokens.shape == (2, 6) and np.all(np.asarray(out.lengths) == 6)
    assert np.all((np.asarray(out.tokens) >= 0) & (np.asarray(out.tokens) < 3))


def test_cli_compare_loads_the_file():
    res = subprocess.run([sys.executable, "-m", "spectheory", "compare", "--plugin", str(EXAMPLE),
                          "--rules", "max-ratio,specinfer", "--max-n", "3", "--out", ""],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    assert re.search(r"^\| max-ratio \|", res.stdout, re.M), res.stdout
