"""Audits: exact_chain against an independent recursion and a closed form; chi-squared test;
check_lossless catches a wrong verifier and passes right ones."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory.audit import acceptance, chi_square, chi_square_test, exact, exact_chain
from spectheory.models import TableLM
from spectheory.testing import check_lossless, naive_independent_rule, naive_independent_verifier
from spectheory.verify import SINGLE, TOKEN, chain, chain_kernel, chain_with_uniforms


def _reference_emitted(target, draft, gamma, prefix=()):
    """Law of the emitted sequence by direct recursion over positions (a different algorithm
    from the vectorised kernel): at each step draw x ~ q, accept w.p. min(1, p/q), else emit a
    residual token and stop; after gamma acceptances emit a bonus token from p."""
    out = {}

    def rec(seq, w, depth):
        p = target.next_law(prefix + seq)
        if depth == gamma:
            for y in range(target.vocab_size):
                if p[y] > 0:
                    out[seq + (y,)] = out.get(seq + (y,), 0.0) + w * p[y]
            return
        q = draft.next_law(prefix + seq)
        res = np.maximum(p - q, 0)
        res = res / res.sum() if res.sum() > 0 else p
        reject_mass = 0.0
        for x in range(target.vocab_size):
            if q[x] == 0:
                continue
            a = min(1.0, p[x] / q[x])
            reject_mass += q[x] * (1 - a)
            if a > 0:
                rec(seq + (x,), w * q[x] * a, depth + 1)
        for y in range(target.vocab_size):
            if res[y] > 0 and reject_mass > 0:
                out[seq + (y,)] = out.get(seq + (y,), 0.0) + w * reject_mass * res[y]

    rec((), 1.0, 0)
    return out


@pytest.mark.parametrize("V,gamma,seed,zero", [(2, 1, 0, 0.0), (3, 2, 1, 0.0), (3, 3, 2, 0.3), (4, 2, 3, 0.25)])
def test_exact_chain_matches_independent_recursion(V, gamma, seed, zero):
    target = TableLM.random(V, gamma + 1, seed=seed, zero_prob=zero)
    draft = TableLM.random(V, gamma, seed=seed + 100, zero_prob=zero).mix(target, 0.4)
    a = exact_chain(target, draft, gamma)
    ref = _reference_emitted(target, draft, gamma)
    assert set(k for k, v in ref.items() if v > 1e-15) == set(k for k, v in a.emitted.items() if v > 1e-15)
    for k, v in ref.items():
        np.testing.assert_allclose(a.emitted.get(k, 0.0), v, atol=1e-14)
    expected = sum(v * (len(k) - 1) for k, v in ref.items())
    np.testing.assert_allclose(a.expected_accepted, expected, atol=1e-13)
    assert a.max_error <= 1e-12


@pytest.mark.parametrize("gamma", [1, 2, 4])
def test_exact_chain_context_free_closed_form(gamma):
    """Context-free laws: E[accepted] = sum_{i=1..gamma} alpha^i, alpha = sum min(p, q)
    (Leviathan et al. 2023, eq. for i.i.d. acceptance)."""
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.3, 0.5])
    alpha = np.minimum(p, q).sum()
    a = exact_chain(TableLM.context_free(p), TableLM.context_free(q), gamma)
    np.testing.assert_allclose(a.expected_accepted, sum(alpha**i for i in range(1, gamma + 1)), atol=1e-13)
    assert a.max_error <= 1e-12


def test_exact_chain_detects_a_wrong_verifier():
    def wrong_kernel(p, q, drafts):
        # BUG on purpose: resample from p after a rejection instead of the residual
        K = chain_kernel(p, q, drafts)
        mass = K[:-1].sum(axis=1, keepdims=True)
        return jnp.concatenate([mass * p[:-1], K[-1:]], axis=0)

    wrong = spectheory.ChainVerifier("wrong-for-test", chain, chain_with_uniforms, wrong_kernel, TOKEN.num_uniforms)
    target = TableLM.random(3, 3, seed=4)
    draft = TableLM.random(3, 2, seed=5)
    assert exact_chain(target, draft, 2, wrong).max_error > 1e-2
    assert exact_chain(target, draft, 2, TOKEN).max_error <= 1e-12
    for bad in ("token", "nope", chain_kernel, SINGLE):
        with pytest.raises(ValueError, match="verifier: expected a spectheory.ChainVerifier"):
            exact_chain(target, draft, 2, bad)


def test_exact_detects_naive_multidraft():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    assert exact(naive_independent_rule, p, q, 1).max_error <= 1e-12
    # n = 2: independently-tested candidates over-emit tokens with p < q
    out = exact(naive_independent_rule, p, q, 2)
    assert out.max_error > 0.1


def test_check_lossless_catches_naive_and_accepts_right_ones():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(AssertionError, match="not lossless"):
        check_lossless(naive_independent_verifier.verify, p, q, 2, num_samples=10_000)
    with pytest.raises(AssertionError, match="exact mixture differs"):
        check_lossless(naive_independent_verifier.verify_with_uniforms, p, q, 2, noise=3,
                       kernel=naive_independent_verifier.kernel, num_samples=2_000)
    rep = check_lossless(SINGLE.verify, p, q, 1, kernel=SINGLE.kernel)
    assert rep.passed and rep.exact_error <= 1e-12
    rep = check_lossless(SINGLE.verify_with_uniforms, p, q, 1, noise=2, seed=3)
    assert rep.passed
    assert rep.detectable_tv == rep.chi_square.detectable_tv and 0 < rep.detectable_tv < 0.05
    assert rep.chi_square.control >= 0.98


def test_check_lossless_naive_fails_at_default_size_and_refuses_tiny_sizes():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    rep = check_lossless(naive_independent_verifier.verify, p, q, 2, raise_on_failure=False)
    assert not rep.passed and rep.exact_error is None
    # the exact mixture of the wrong rule is farther from p than the stated detectable TV
    tv = 0.5 * np.abs(exact(naive_independent_rule, p, q, 2).output - p).sum()
    assert tv > rep.detectable_tv
    for N in (8, 30):
        with pytest.raises(ValueError, match="^num_samples: "):
            check_lossless(naive_independent_verifier.verify, p, q, 2, num_samples=N)
    with pytest.raises(ValueError, match=r"^num_samples: 30 samples are too few: .* >= 0\.[5-9]"):
        check_lossless(naive_independent_verifier.verify, p, q, 2, num_samples=30)
    for N in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="^num_samples"):
            check_lossless(SINGLE.verify, p, q, 1, num_samples=N)
    for kw, name in (({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"alpha": 0.0}, "alpha")):
        with pytest.raises(ValueError, match=f"^{name}"):
            check_lossless(SINGLE.verify, p, q, 1, **kw)
    rep = check_lossless(SINGLE.verify, np.array([1.0]), np.array([1.0]), 1, num_samples=10)
    assert rep.passed and rep.detectable_tv == 0.0 and rep.chi_square.control == 1.0
    with pytest.raises(ValueError, match=r"^drafts \(probs\)"):
        check_lossless(SINGLE.verify, p, q, 1, drafts=(np.array([[0], [1]]), np.array([0.5, np.nan])))


def test_check_lossless_plain_numpy_verifier():
    """A third-party verifier written in NumPy (not traceable) is run in a loop."""

    def np_verify(u, p, q, drafts):
        x = int(drafts[0])
        if u[0] * q[x] < p[x]:
            return x
        w = np.maximum(p - q, 0)
        return int(np.searchsorted(np.cumsum(w) / w.sum(), u[1], side="right"))

    def np_wrong(u, p, q, drafts):
        x = int(drafts[0])
        return x if u[0] * q[x] < p[x] else int(np.searchsorted(np.cumsum(p), u[1], side="right"))

    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    assert check_lossless(np_verify, p, q, 1, noise=2, num_samples=5_000).passed
    rep = check_lossless(np_wrong, p, q, 1, noise=2, num_samples=5_000, raise_on_failure=False)
    assert not rep.passed


def test_chi_square_test_basics():
    rng = np.random.default_rng(0)
    probs = np.array([0.5, 0.25, 0.25, 0.0])
    good = rng.choice(4, size=5000, p=probs)
    res = chi_square_test(good, probs)
    assert res.passed and res.dof == 2 and 0 < res.detectable_tv < 0.1 and res.hidden_tv == 0.0
    assert res.control is None  # the bare test runs no negative control
    bad = rng.choice(4, size=5000, p=[0.45, 0.3, 0.25, 0.0])
    assert not chi_square_test(bad, probs).passed
    res = chi_square_test(np.r_[good[:200], 3], probs)  # one sample where the law has no mass
    assert res.p_value == 0.0 and not res.passed and res.statistic == np.inf


def test_chi_square_test_refuses_invalid_laws_and_samples():
    s = np.array([0, 1, 2] * 20)
    bad_laws = {
        "NaN": [0.5, np.nan, 0.5], "inf": [0.5, np.inf, 0.5], "negative": [0.6, -0.1, 0.5],
        "zero": [0.0, 0.0, 0.0], "unnormalised": [0.5, 0.3, 0.3], "slightly off": [0.5, 0.25, 0.25 + 1e-6],
    }
    for case, law in bad_laws.items():
        with pytest.raises(ValueError, match="^probs"):
            chi_square_test(s, np.array(law))
    law = np.array([0.5, 0.25, 0.25])
    for bad in (s.astype(float), np.r_[s, 3], np.r_[s, -1], np.array([], int), s.astype(bool)):
        with pytest.raises(ValueError, match="^samples"):
            chi_square_test(bad, law)
    for a in (0, 1, 1.5, -0.1, np.nan, True, "0.05", None):
        with pytest.raises(ValueError, match="^alpha"):
            chi_square_test(s, law, alpha=a)
    for m in (0, -1, np.nan, np.inf, None):
        with pytest.raises(ValueError, match="^min_expected"):
            chi_square_test(s, law, min_expected=m)
    # a float32 law is held to the float32 tolerance, a float64 one to float64's
    assert chi_square_test(s, np.array([0.5, 0.25, 0.25 + 1e-6], np.float32)).dof == 2


def test_chi_square_test_never_passes_when_it_cannot_test():
    law = np.array([0.25, 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="^samples: 8 samples cannot test"):  # one pooled bin
        chi_square_test(np.arange(8) % 4, law)
    res = chi_square_test(np.zeros(10, int), np.array([1.0]))  # V = 1: the only law there is
    assert res.passed and res.dof == 0 and res.detectable_tv == 0.0
    # a one-point law over V > 1 is tested by its support alone, exactly:
    # P[miss] = (1 - eps)^N at the stated detectable TV
    one = np.array([0.0, 1.0, 0.0])
    res = chi_square_test(np.ones(50, int), one)
    assert res.passed and res.dof == 0
    np.testing.assert_allclose((1 - res.detectable_tv) ** 50, 0.001, rtol=1e-12)  # solved at 0.999
    assert not chi_square_test(np.r_[np.ones(49, int), 2], one).passed


def test_chi_square_audit_conditional_and_unconditional():
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    assert chi_square(r, p, q, 1, key=jax.random.key(0)).passed
    res = chi_square(r, p, q, 1, key=jax.random.key(1), drafts=np.array([2]))
    np.testing.assert_allclose(res.expected / res.expected.sum(), SINGLE.kernel(p, q, np.array([2])), atol=1e-12)
    assert res.passed and res.control >= 0.98 and 0 < res.detectable_tv < 0.05


def test_chi_square_audit_refuses_bad_sizes_and_keys_and_wrong_rules():
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    for N in (0, -1, 1.5, None):
        with pytest.raises(ValueError, match="^num_samples"):
            chi_square(r, p, q, 1, key=jax.random.key(0), num_samples=N)
    with pytest.raises(ValueError, match="^num_samples: 8 samples cannot test"):
        chi_square(r, p, q, 1, key=jax.random.key(0), num_samples=8)
    with pytest.raises(ValueError, match="^num_samples: 40 samples are too few"):
        chi_square(r, p, q, 1, key=jax.random.key(0), num_samples=40)
    for key in (None, 0, np.zeros(3, np.uint32), jax.random.split(jax.random.key(0), 2)):
        with pytest.raises(ValueError, match="^key"):
            chi_square(r, p, q, 1, key=key)
    with pytest.raises(ValueError, match="^alpha"):
        chi_square(r, p, q, 1, key=jax.random.key(0), alpha=2.0)
    assert chi_square(r, p, q, 1, key=jax.random.PRNGKey(0), num_samples=2000).passed  # raw keys too
    pn = np.array([0.5, 0.3, 0.2, 0.0])
    qn = np.array([0.1, 0.2, 0.3, 0.4])
    assert not chi_square(naive_independent_rule, pn, qn, 2, key=jax.random.key(0)).passed


def test_negative_control_failure_is_an_error(monkeypatch):
    """A control that does not reject (simulated by demanding a rate above 1) stops the audits."""
    from spectheory.audit import _power

    monkeypatch.setattr(_power, "CONTROL_MIN_RATE", 1.01)
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="^num_samples: .* negative control"):
        chi_square(r, p, q, 1, key=jax.random.key(0), num_samples=2000)
    with pytest.raises(ValueError, match="^num_samples: .* negative control"):
        check_lossless(SINGLE.verify, p, q, 1, num_samples=2000)
    with pytest.raises(ValueError, match="^num_samples: .* negative control"):
        acceptance(r, p, q, 1, method="monte_carlo", num_samples=2000)


def test_acceptance_routes_agree():
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    closed = acceptance(r, p, q, 1)
    ex = acceptance(r, p, q, 1, method="exact")
    mc = acceptance(r, p, q, 1, method="monte_carlo", num_samples=40_000, key=jax.random.key(5))
    np.testing.assert_allclose(closed.value, 0.6, atol=1e-12)
    np.testing.assert_allclose(ex.value, 0.6, atol=1e-12)
    assert abs(mc.value - 0.6) < 4 * mc.stderr
    assert closed.method == "closed_form" and mc.method == "monte_carlo"
    assert closed.detectable_tv == 0.0 and closed.control is None
    assert 0 < mc.halfwidth < mc.detectable_tv < 0.05 and mc.control >= 0.98
    assert abs(mc.value - 0.6) <= mc.halfwidth


def test_acceptance_refuses_bad_input():
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    for N in (0, -3, 1.5):
        with pytest.raises(ValueError, match="^num_samples"):
            acceptance(r, p, q, 1, method="monte_carlo", num_samples=N)
    with pytest.raises(ValueError, match=r"^num_samples: 48 samples are too few: .* >= 0\.50"):
        acceptance(r, p, q, 1, method="monte_carlo", num_samples=48)
    assert acceptance(r, p, q, 1, method="monte_carlo", num_samples=49).detectable_tv <= 0.5
    with pytest.raises(ValueError, match="^key"):
        acceptance(r, p, q, 1, method="monte_carlo", key=3)
    with pytest.raises(ValueError, match="^alpha"):
        acceptance(r, p, q, 1, method="monte_carlo", alpha=1.0)
    with pytest.raises(ValueError, match="^method"):
        acceptance(r, p, q, 1, method="mc")
    for bad in ([0.6, np.nan, 0.4], [0.6, 0.3, 0.3]):
        with pytest.raises(ValueError, match="^p"):
            acceptance(r, np.array(bad), q, 1)
    with pytest.raises(ValueError, match="^n"):
        acceptance(r, p, q, 0)
