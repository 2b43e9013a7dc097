"""Registration that cannot admit a wrong rule: the structure check of every field, the exact
audit on seeded small cases (and its ``audit=False`` flag), a registry left untouched by a
refusal, and the same gate for a Rule object handed to decoding.

Expected errors are recomputed by an independent route (enumerating the i.i.d. draft tuples by
hand against the verifier's kernel) rather than copied from the audit's output.
"""

from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory import _registry
from spectheory import drafts as D
from spectheory import verify as V
from spectheory._builtin_rules import BUILTIN
from spectheory._cli import main
from spectheory.audit import exact
from spectheory.models import TableCausalLM, TableLM
from spectheory.testing import naive_independent_rule

TP = TableCausalLM(TableLM.random(3, 4, seed=5, concentration=1.0))
TQ = TableCausalLM(TableLM.random(3, 4, seed=6, concentration=1.0))


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry (restored afterwards) and of the audit's verdict cache."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_SCHEMES", dict(_registry._SCHEMES))
    monkeypatch.setattr(_registry, "_VERDICTS", {})
    return _registry


def _iid_output(kernel, p, q, n):
    """Law of the emitted token for n i.i.d. drafts, every tuple enumerated by hand (the kernel
    jitted, as decoding runs it: no front-door refusal of repeated drafts)."""
    out = np.zeros(len(p))
    kernel = jax.jit(kernel)
    with jax.enable_x64(True):
        for t in itertools.product(range(len(p)), repeat=n):
            w = np.prod(q[list(t)])
            if w > 0:
                out += w * np.asarray(kernel(jnp.asarray(p), jnp.asarray(q), jnp.asarray(t)), np.float64)
    return out


def _wor_output(kernel, p, q, n):
    """The same for n drafts without replacement (ordered sequential draws, by hand)."""
    out = np.zeros(len(p))
    kernel = jax.jit(kernel)
    with jax.enable_x64(True):
        for t in itertools.permutations(np.flatnonzero(q > 0).tolist(), n):
            w, left = 1.0, 1.0
            for x in t:
                w *= q[x] / left
                left -= q[x]
            out += w * np.asarray(kernel(jnp.asarray(p), jnp.asarray(q), jnp.asarray(t)), np.float64)
    return out


def _reported(msg):
    """(max error, n, p, q) of a refusal message."""
    m = re.search(r"max \|output - p\| = ([0-9.e+-]+) .* at n=(\d+), p=(\[[^]]*\]), q=(\[[^]]*\])", msg)
    assert m, msg
    return float(m.group(1)), int(m.group(2)), np.array(eval(m.group(3))), np.array(eval(m.group(4)))


# -- the mismatched pairs and the wrong rule are refused ----------------------------------------


@pytest.mark.parametrize("scheme,verifier,enumerate_", [(D.IID, V.RSD, _iid_output),
                                                         (D.WITHOUT_REPLACEMENT, V.SPECINFER, _wor_output)],
                         ids=["iid-drafts-rsd-verifier", "without-replacement-drafts-specinfer-verifier"])
def test_mismatched_scheme_and_verifier_are_refused(registry, scheme, verifier, enumerate_):
    before = spectheory.rules()
    with pytest.raises(ValueError, match=r"^verifier: rule 'mismatch' is not lossless") as e:
        spectheory.register(spectheory.Rule("mismatch", scheme, verifier))
    assert "audit=False" in str(e.value)
    err, n, p, q = _reported(str(e.value))
    # the stated error is the real one, recomputed by hand at the stated case (rounded laws)
    p, q = p / p.sum(), q / q.sum()
    assert np.max(np.abs(enumerate_(verifier.kernel, p, q, n) - p)) == pytest.approx(err, rel=1e-2)
    assert err > 1e-3
    assert spectheory.rules() == before and "mismatch" not in spectheory.rules()


def test_the_naive_rule_is_refused(registry):
    with pytest.raises(ValueError, match=r"^verifier: rule 'naive-independent' is not lossless") as e:
        spectheory.register(naive_independent_rule)
    err, n, p, q = _reported(str(e.value))
    assert n == 2  # lossless for one draft: the audit goes on to n = 2
    p, q = p / p.sum(), q / q.sum()
    assert np.max(np.abs(_iid_output(naive_independent_rule.verifier.kernel, p, q, n) - p)) == pytest.approx(
        err, rel=1e-2)
    assert "naive-independent" not in spectheory.rules()


def test_a_wrong_closed_form_acceptance_is_refused(registry):
    liar = spectheory.Rule("liar", D.WITHOUT_REPLACEMENT, V.RSD._replace(acceptance=lambda p, q, n: 0.5))
    with pytest.raises(ValueError, match=r"^verifier.acceptance: rule 'liar' claims acceptance 0.5"):
        spectheory.register(liar)


def test_a_kernel_that_raises_is_refused(registry):
    def boom(p, q, drafts):
        raise RuntimeError("kaput")

    with pytest.raises(ValueError, match=r"^verifier: the exact audit of rule 'boom'.*RuntimeError: kaput"):
        spectheory.register(spectheory.Rule("boom", D.IID, V.SPECINFER._replace(kernel=boom)))
    assert "boom" not in spectheory.rules()


def test_a_scheme_whose_max_n_raises_is_refused(registry):
    bad = spectheory.Rule("odd-max-n", D.IID._replace(name="iid-odd", max_n=lambda V: "many"), V.SPECINFER)
    with pytest.raises(ValueError, match="^verifier: the exact audit of rule 'odd-max-n' could not choose"):
        spectheory.register(bad)
    assert "iid-odd" not in D.schemes()


def test_a_rule_the_audit_cannot_reach_needs_audit_false(registry):
    five = spectheory.Rule("five-drafts", D.IID, V.SPECINFER, fixed_n=5)
    with pytest.raises(ValueError, match="supports none of n = .*audit=False"):
        spectheory.register(five)
    assert spectheory.register(five, audit=False) is five and spectheory.rule("five-drafts") is five


# -- what the audit enumerates ------------------------------------------------------------------


def test_audit_cases_cover_the_edge_cases():
    cases = _registry.audit_cases(spectheory.rule("specinfer"))
    assert sorted({n for _, _, n in cases}) == [1, 2, 3]
    for n in (1, 2, 3):
        mine = [(p, q) for p, q, m in cases if m == n]
        assert any(np.array_equal(p, q) for p, q in mine)
        assert any(np.any(q == 0) for _, q in mine) and any(np.any(p == 0) for p, _ in mine)
        assert all(np.isclose(p.sum(), 1) and np.isclose(q.sum(), 1) and len(p) == 4 for p, q in mine)
    assert [n for _, _, n in _registry.audit_cases(spectheory.rule("spechub"))] == [2, 2, 2]
    again = _registry.audit_cases(spectheory.rule("specinfer"))  # seeded: the same cases every time
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(cases, again))


@pytest.mark.parametrize("r", BUILTIN, ids=[r.name for r in BUILTIN])
def test_every_builtin_rule_passes_the_registration_audit(monkeypatch, r):
    """The built-ins are registered with audit=False (import time); here they take the audit."""
    monkeypatch.setattr(_registry, "_VERDICTS", {})
    assert _registry.audit_rule(r) is r
    assert _registry._VERDICTS[r] is None


def test_a_correct_new_rule_is_accepted(registry):
    copy = spectheory.Rule("rsd-copy", D.WITHOUT_REPLACEMENT, V.RSD, description="a copy")
    assert spectheory.register(copy) is copy
    assert spectheory.rule("rsd-copy") is copy and spectheory.rules()[-1] == "rsd-copy"


# -- structure ----------------------------------------------------------------------------------

GOOD = spectheory.Rule("good", D.IID, V.SPECINFER)
MALFORMED = [
    (TypeError, "^name", GOOD._replace(name=3)),
    (ValueError, "^name", GOOD._replace(name="  ")),
    (TypeError, "^drafts: expected a spectheory.DraftScheme", GOOD._replace(drafts="iid")),
    (TypeError, "^drafts.name", GOOD._replace(drafts=D.IID._replace(name=None))),
    (TypeError, "^drafts.sample", GOOD._replace(drafts=D.IID._replace(sample=None))),
    (TypeError, "^drafts.law", GOOD._replace(drafts=D.IID._replace(law=3))),
    (TypeError, "^drafts.children", GOOD._replace(drafts=D.IID._replace(children="x"))),
    (TypeError, "^drafts.family", GOOD._replace(drafts=D.IID._replace(family=1))),
    (TypeError, "^drafts.min_n", GOOD._replace(drafts=D.IID._replace(min_n=1.0))),
    (ValueError, "^drafts.min_n", GOOD._replace(drafts=D.IID._replace(min_n=0))),
    (TypeError, "^drafts.max_n", GOOD._replace(drafts=D.IID._replace(max_n=4))),
    (TypeError, "^drafts.replacement", GOOD._replace(drafts=D.IID._replace(replacement="yes"))),
    (TypeError, "^verifier: expected a spectheory.Verifier", GOOD._replace(verifier=None)),
    (TypeError, "^verifier: expected a spectheory.Verifier", GOOD._replace(verifier=tuple(V.SPECINFER))),
    (TypeError, "^verifier.verify:", GOOD._replace(verifier=V.SPECINFER._replace(verify=None))),
    (TypeError, "^verifier.kernel", GOOD._replace(verifier=V.SPECINFER._replace(kernel=3))),
    (TypeError, "^verifier.verify_with_uniforms", GOOD._replace(verifier=V.SPECINFER._replace(verify_with_uniforms=0))),
    (TypeError, "^verifier.num_uniforms", GOOD._replace(verifier=V.SPECINFER._replace(num_uniforms=2))),
    (TypeError, "^verifier.acceptance", GOOD._replace(verifier=V.SPECINFER._replace(acceptance=0.5))),
    (TypeError, "^verifier.host_only", GOOD._replace(verifier=V.SPECINFER._replace(host_only="no"))),
    (TypeError, "^fixed_n", GOOD._replace(fixed_n=1.5)),
    (TypeError, "^fixed_n", GOOD._replace(fixed_n=True)),
    (ValueError, "^fixed_n", GOOD._replace(fixed_n=0)),
    (ValueError, "^fixed_n", spectheory.Rule("hub1", D.HUB, V.SPECHUB, fixed_n=1)),
    (TypeError, "^description", GOOD._replace(description=None)),
]


@pytest.mark.parametrize("error,match,bad", MALFORMED, ids=[m.strip("^").split(":")[0] + f"-{i}"
                                                             for i, (_, m, _) in enumerate(MALFORMED)])
def test_malformed_rules_are_refused_naming_the_field(registry, error, match, bad):
    before = (spectheory.rules(), D.schemes())
    for audit in (True, False):  # the structure is checked even without the audit
        with pytest.raises(error, match=match):
            spectheory.register(bad, audit=audit)
    assert (spectheory.rules(), D.schemes()) == before


def test_register_refuses_other_values(registry):
    with pytest.raises(TypeError, match="^new"):
        spectheory.register(("single", None, None))
    with pytest.raises(TypeError, match="^new.law"):
        spectheory.register(D.IID._replace(name="iid-broken", law=None))
    with pytest.raises(TypeError, match="^audit"):
        spectheory.register(GOOD, audit="no")
    assert "iid-broken" not in D.schemes()


# -- a refusal leaves everything working ---------------------------------------------------------


def test_a_refused_registration_leaves_every_call_working(registry, capsys):
    before_rules, before_schemes = spectheory.rules(), D.schemes()
    new_scheme = D.WITHOUT_REPLACEMENT._replace(name="test-wor-copy")  # would be registered with it
    refused = [spectheory.Rule("bad-pair", new_scheme, V.SPECINFER), naive_independent_rule,
               spectheory.Rule("malformed", D.IID, None), spectheory.Rule("single", D.IID, V.RSD)]
    for bad in refused:
        with pytest.raises((TypeError, ValueError)):
            spectheory.register(bad)
    assert spectheory.rules() == before_rules and D.schemes() == before_schemes
    assert "test-wor-copy" not in D.schemes() and spectheory.rule("single").verifier is V.SINGLE
    # every registered rule still audits, generates (where a tree carries it), lists
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert exact(spectheory.rule("single"), p, q, 1).max_error < 1e-12
    assert exact(spectheory.rule("specinfer"), p, q, 2).max_error < 1e-12
    out = spectheory.generate(jax.random.key(0), TP, TQ, [[0]], gamma=2, max_new_tokens=3)
    assert out.lengths.tolist() == [3]
    assert "specinfer" in spectheory.decode.supported_verifiers()
    assert main(["rules"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == before_rules


def test_audit_false_skips_only_the_audit(registry):
    wrong = spectheory.Rule("naive-on-purpose", D.IID, naive_independent_rule.verifier)
    assert spectheory.register(wrong, audit=False) is wrong  # the user vouches for it
    assert spectheory.rule("naive-on-purpose") is wrong
    assert exact(wrong, np.array([0.5, 0.5]), np.array([0.9, 0.1]), 2).max_error > 0.01  # and it is wrong


# -- Rule objects handed to decoding --------------------------------------------------------------


def test_rule_objects_in_generate_are_audited_once(registry, monkeypatch):
    calls = []
    real = _registry._refusal
    monkeypatch.setattr(_registry, "_refusal", lambda r: calls.append(r.name) or real(r))
    copy = spectheory.Rule("rsd-object", D.WITHOUT_REPLACEMENT, V.RSD)
    for seed in range(2):
        out = spectheory.generate(jax.random.key(seed), TP, TQ, [[0]], verifier=copy, gamma=2, max_new_tokens=3)
        assert out.lengths.tolist() == [3]
    assert calls == ["rsd-object"]  # one audit, cached for the rule
    from spectheory.decode._kernel import resolve_verifier  # what generate and build_step call

    assert resolve_verifier(spectheory.rule("rsd")) is spectheory.rule("rsd")
    assert calls == ["rsd-object"]  # the registered object is trusted as registered


@pytest.mark.parametrize("bad", [naive_independent_rule, spectheory.Rule("iid-rsd", D.IID, V.RSD),
                                 spectheory.Rule("wor-specinfer", D.WITHOUT_REPLACEMENT, V.SPECINFER),
                                 spectheory.Rule("malformed", D.IID, "specinfer")],
                         ids=["naive", "iid-rsd", "wor-specinfer", "malformed"])
def test_wrong_rule_objects_are_refused_by_decoding(registry, bad):
    with pytest.raises(ValueError, match="^verifier"):
        spectheory.generate(jax.random.key(0), TP, TQ, [[0]], verifier=bad, max_new_tokens=2)
    from spectheory.decode import build_step, tree_proposer

    with pytest.raises(ValueError, match="^verifier"):
        build_step(TP, tree_proposer(TQ, "iid", (2, 1)), bad)


def test_a_refusal_is_cached_too(registry, monkeypatch):
    calls = []
    real = _registry._refusal
    monkeypatch.setattr(_registry, "_refusal", lambda r: calls.append(r.name) or real(r))
    for _ in range(2):
        with pytest.raises(ValueError, match="not lossless"):
            spectheory.generate(jax.random.key(0), TP, TQ, [[0]], verifier=naive_independent_rule, max_new_tokens=2)
    assert calls == ["naive-independent"]
