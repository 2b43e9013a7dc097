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
    assert chi_square_test(good, probs).passed
    bad = rng.choice(4, size=5000, p=[0.45, 0.3, 0.25, 0.0])
    assert not chi_square_test(bad, probs).passed
    res = chi_square_test(np.array([0, 3]), probs)
    assert res.p_value == 0.0 and not res.passed
    assert chi_square_test(np.zeros(10, int), np.array([1.0])).passed  # V = 1: nothing to test


def test_chi_square_audit_conditional_and_unconditional():
    r = spectheory.rule("single")
    p = np.array([0.6, 0.3, 0.1])
    q = np.array([0.2, 0.3, 0.5])
    assert chi_square(r, p, q, 1, key=jax.random.key(0)).passed
    res = chi_square(r, p, q, 1, key=jax.random.key(1), drafts=np.array([2]))
    np.testing.assert_allclose(res.expected / res.expected.sum(), SINGLE.kernel(p, q, np.array([2])), atol=1e-12)
    assert res.passed


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
