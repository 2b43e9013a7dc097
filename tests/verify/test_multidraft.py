"""Multi-draft rules: hand-computed values, closed forms against exact enumeration, optimality
against independent oracles, K-SEQ's guarantee, draft-scheme laws and input validation.

Expected values come from routes independent of the code under test: arithmetic done by hand
(in the comments), brute force over subsets, the prefix formula, scipy's HiGHS LP, or
scipy's root finder.
"""

import doctest
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import assume, given, settings, strategies as st

import spectheory
from spectheory import drafts as D
from spectheory import verify as Vf
from spectheory.audit import chi_square_test, exact
from spectheory.testing import naive_independent_rule, prob_pairs

from _cases import edge_pairs, random_pair, vocab_for
from _optimum import brute_alpha, brute_alpha_iid, linprog_alpha, prefix_alpha_iid

MULTI_RULES = ["specinfer", "rsd", "spectr", "greedy", "spechub", "optimal"]
CLOSED_FORM_RULES = ["specinfer", "spectr", "greedy", "spechub", "optimal"]


def _pairs(V, seed):
    """Edge pairs plus two extra random pairs."""
    cases = dict(edge_pairs(V, seed=seed))
    for k in range(2):
        cases[f"random{k}"] = random_pair(V, seed=100 + 7 * seed + k, zeros=k == 1)
    return cases


def _ns(rule, V):
    return [n for n in range(1, 6) if rule.supports(n, V)]


# --- hand-computed values -----------------------------------------------------------------

P2, Q2 = np.array([0.5, 0.5]), np.array([0.9, 0.1])


def test_specinfer_hand_value():
    # beta_1 = min(.5,.9) + min(.5,.1) = 0.6; p_2 = norm((p - q)+) = [0, 1];
    # beta_2 = min(0,.9) + min(1,.1) = 0.1; acceptance = 1 - 0.4 * 0.9 = 0.64.
    np.testing.assert_allclose(float(Vf.specinfer_acceptance(P2, Q2, 2)), 0.64, atol=1e-15)
    np.testing.assert_allclose(exact(spectheory.rule("specinfer"), P2, Q2, 2).acceptance, 0.64, atol=1e-14)


def test_spectr_hand_value():
    # p/q = [5/9, 5]: for rho in [1, 2], beta = 0.1 + 0.5 / rho. Multiplying
    # 1 - (0.9 - 0.5/rho)^2 = 0.1 rho + 0.5 by rho^2 gives 0.1 x^3 + 0.31 x^2 - 0.9 x + 0.25 = 0.
    roots = np.roots([0.1, 0.31, -0.9, 0.25])
    rho = [r.real for r in roots if abs(r.imag) < 1e-12 and 1 <= r.real <= 2]
    assert len(rho) == 1
    rho = rho[0]
    np.testing.assert_allclose(float(Vf.spectr_rho(P2, Q2, 2)), rho, rtol=1e-13)
    expected = 1 - (0.9 - 0.5 / rho) ** 2
    np.testing.assert_allclose(float(Vf.spectr_acceptance(P2, Q2, 2)), expected, atol=1e-13)
    np.testing.assert_allclose(exact(spectheory.rule("spectr"), P2, Q2, 2).acceptance, expected, atol=1e-13)


def test_greedy_and_spechub_hand_value():
    # T = {0} (the hub), q' = [0, .75, .25]: 0.1 + min(.2, .75) + min(.7, .25) = 0.55.
    p, q = np.array([0.1, 0.2, 0.7]), np.array([0.6, 0.3, 0.1])
    for name in ("greedy", "spechub"):
        r = spectheory.rule(name)
        np.testing.assert_allclose(float(r.verifier.acceptance(p, q, 2)), 0.55, atol=1e-15)
        np.testing.assert_allclose(exact(r, p, q, 2).acceptance, 0.55, atol=1e-14)


def test_optimal_hand_value():
    # Subsets: {} -> 1, {0} -> .5 + 1 - .81 = .69, {1} -> 1.49, {0,1} -> 1: alpha* = 0.69.
    np.testing.assert_allclose(Vf.OPTIMAL.acceptance(P2, Q2, 2), 0.69, atol=1e-14)
    np.testing.assert_allclose(exact(spectheory.rule("optimal"), P2, Q2, 2).acceptance, 0.69, atol=1e-14)


def test_naive_independent_rule_is_not_lossless():
    # n = 2, p = [.5, .5], q = [.9, .1]: a(0) = 5/9, a(1) = 1, residual = delta_1. Token 0 is
    # emitted when the first 0 passes (.9 * 5/9 = .5) or a first 0 fails and a second 0 passes
    # (.9 * 4/9 * .9 * 5/9 = .2): P(0) = 0.7 instead of 0.5.
    a = exact(naive_independent_rule, P2, Q2, 2)
    np.testing.assert_allclose(a.output, [0.7, 0.3], atol=1e-14)
    assert a.max_error > 0.01
    for n in range(3, 6):
        assert exact(naive_independent_rule, P2, Q2, n).max_error > 0.01, n
    # the same case is exact for every registered i.i.d. rule
    for name in ("specinfer", "spectr", "optimal"):
        assert exact(spectheory.rule(name), P2, Q2, 2).max_error <= 1e-14


# --- closed forms against enumeration ---------------------------------------------------------

@pytest.mark.parametrize("name", CLOSED_FORM_RULES)
def test_closed_form_acceptance_equals_exact_enumeration(name):
    """Random pairs (the conformance suite does the same on its edge cases)."""
    r = spectheory.rule(name)
    for n in range(1, 6):
        V = vocab_for(n)
        if not r.supports(n, V):
            continue
        for seed in range(3):
            p, q = random_pair(V, seed=1000 + seed, zeros=seed == 2)
            if not r.drafts.replacement and n > np.sum(q > 0):
                continue
            a = exact(r, p, q, n)
            np.testing.assert_allclose(float(r.verifier.acceptance(p, q, n)), a.acceptance, atol=1e-12,
                                       err_msg=f"{name} V={V} n={n} seed={seed}")


@pytest.mark.parametrize("name", ["specinfer", "spectr", "greedy", "spechub"])
def test_closed_form_acceptance_batched(name):
    r = spectheory.rule(name)
    n = 2
    ps, qs = zip(*[random_pair(6, s) for s in range(6)])
    ps, qs = np.stack(ps).reshape(2, 3, 6), np.stack(qs).reshape(2, 3, 6)
    batched = np.asarray(r.verifier.acceptance(ps, qs, n))
    assert batched.shape == (2, 3)
    for i, j in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(batched[i, j], float(r.verifier.acceptance(ps[i, j], qs[i, j], n)), atol=1e-14)


# --- optimality against independent oracles ---------------------------------------------------

@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy", "hub"])
def test_optimal_verifier_reaches_alpha_star(scheme):
    """The LP verifier's exact acceptance equals the subset minimum and scipy's HiGHS LP."""
    sch = D.scheme(scheme)
    ver = Vf.optimal_verifier(sch)
    rule = spectheory.Rule(f"optimal-{scheme}", sch, ver)
    for V in (2, 3, 4):
        for n in range(1, 4):
            for case, (p, q) in _pairs(V, seed=V + n).items():
                if not rule.supports(n, V) or (not sch.replacement and n > np.sum(q > 0)):
                    continue
                tuples, probs = sch.law(q, n)
                star = brute_alpha(p, tuples, probs)
                a = exact(rule, p, q, n)
                assert a.max_error <= 1e-12, (scheme, V, n, case)
                np.testing.assert_allclose(a.acceptance, star, atol=1e-12, err_msg=f"{scheme} {V} {n} {case}")
                np.testing.assert_allclose(ver.acceptance(p, q, n), star, atol=1e-12)
                np.testing.assert_allclose(linprog_alpha(p, tuples, probs), star, atol=1e-9)


def test_lp_optimum_equals_closed_forms_for_greedy_and_hub():
    for seed in range(5):
        p, q = random_pair(6, seed)
        for n in (1, 2, 3, 4):
            np.testing.assert_allclose(Vf.optimal_verifier(D.GREEDY).acceptance(p, q, n),
                                       float(Vf.greedy_acceptance(p, q, n)), atol=1e-12)
        np.testing.assert_allclose(Vf.optimal_verifier(D.HUB).acceptance(p, q, 2),
                                   float(Vf.spechub_acceptance(p, q)), atol=1e-12)


def test_prefix_formula_equals_subset_minimum():
    """THEORY section 4: for i.i.d. drafts an optimal H is a prefix in p/q order."""
    for seed in range(30):
        V = 2 + seed % 7
        p, q = random_pair(V, seed, zeros=seed % 2 == 0)
        for n in range(1, 9):
            np.testing.assert_allclose(prefix_alpha_iid(p, q, n), brute_alpha_iid(p, q, n), atol=1e-13)


def _pad(x, V=8):
    return np.concatenate([x, np.zeros(V - len(x))])


@given(prob_pairs(max_size=8), st.integers(2, 8))
def test_kseq_guarantee(pq, n):
    """K-SEQ acceptance >= (1 - (1 - 1/n)^n) alpha* (SpecTr, Theorem 2), alpha* from both the
    subset minimum and the prefix formula. Inputs are zero-padded to V = 8 (tokens with
    p = q = 0 change neither side) so that one compilation serves every V."""
    p, q = pq
    star = brute_alpha_iid(p, q, n)
    np.testing.assert_allclose(prefix_alpha_iid(p, q, n), star, atol=1e-12)
    kseq = float(Vf.spectr_acceptance(_pad(p), _pad(q), n))
    assert kseq >= (1 - (1 - 1 / n) ** n) * star - 1e-12
    assert kseq <= star + 1e-12


def _f(p, q, n, rho):
    beta = np.sum(np.minimum(q, p / rho))
    return 1 - (1 - beta) ** n - rho * beta


@given(prob_pairs(max_size=8), st.integers(1, 8))
def test_spectr_rho_solves_its_equation(pq, n):
    p, q = pq
    rho = float(Vf.spectr_rho(_pad(p), _pad(q), n))
    assert 1 <= rho <= n
    assert abs(_f(p, q, n, rho)) <= 1e-12
    # the smallest root: the equation is still positive a little to the left
    if rho - 1e-7 >= 1:
        assert _f(p, q, n, rho - 1e-7) > 0
    # an independent root finder agrees where the root is well conditioned
    if _f(p, q, n, 1.0) > 1e-9 and n > 1:
        ref = scipy.optimize.brentq(lambda r: _f(p, q, n, r), 1.0, float(n), xtol=1e-15, rtol=1e-15)
        np.testing.assert_allclose(rho, ref, rtol=1e-9)


def test_spectr_rho_jit_vmap_float32():
    ps, qs = zip(*[random_pair(7, s, zeros=s % 2 == 0) for s in range(8)])
    ps, qs = np.stack(ps), np.stack(qs)
    for n in (2, 5):
        loop = np.array([float(Vf.spectr_rho(p, q, n)) for p, q in zip(ps, qs)])
        np.testing.assert_allclose(jax.jit(Vf.spectr_rho, static_argnums=2)(ps[0], qs[0], n), loop[0], rtol=0, atol=0)
        batched = jax.jit(jax.vmap(Vf.spectr_rho, in_axes=(0, 0, None)), static_argnums=2)(ps, qs, n)
        np.testing.assert_allclose(batched, loop, rtol=1e-15)
        r32 = jax.vmap(Vf.spectr_rho, in_axes=(0, 0, None))(ps.astype(np.float32), qs.astype(np.float32), n)
        assert r32.dtype == jnp.float32
        np.testing.assert_allclose(r32, loop, rtol=1e-4)


def test_spectr_residual_is_the_papers_formula():
    """At rho*, (p - rho q)+ / (1 - rho beta) equals SpecTr's
    [p - min(q, p/rho) (1 - (1-beta)^n)/beta] / (1-beta)^n."""
    for seed in range(10):
        p, q = random_pair(6, seed, zeros=seed % 3 == 0)
        for n in (2, 3, 5):
            rho = float(Vf.spectr_rho(p, q, n))
            beta = np.sum(np.minimum(q, p / rho))
            rest = (1 - beta) ** n
            if rest < 1e-6:
                continue
            paper = (p - np.minimum(q, p / rho) * (1 - rest) / beta) / rest
            np.testing.assert_allclose(np.asarray(Vf.spectr_residual(p, q, rho)), np.maximum(paper, 0), atol=1e-9)


@settings(max_examples=25)
@given(prob_pairs(min_size=2, max_size=6))
def test_spechub_and_greedy_agree_at_two_drafts(pq):
    p, q = pq
    assume(np.sum(q > 0) >= 2)
    hub = exact(spectheory.rule("spechub"), p, q, 2)
    greedy = exact(spectheory.rule("greedy"), p, q, 2)
    assert hub.max_error <= 1e-12 and greedy.max_error <= 1e-12
    np.testing.assert_allclose(hub.acceptance, greedy.acceptance, atol=1e-12)
    # and both reach the optimum of the hub draft law
    tuples, probs = D.hub_law(q, 2)
    np.testing.assert_allclose(hub.acceptance, brute_alpha(p, tuples, probs), atol=1e-12)


@settings(max_examples=30)
@given(prob_pairs(size=4), st.integers(1, 3))
def test_every_rule_is_lossless_and_below_the_lp_optimum(pq, n):
    p, q = pq
    for name in spectheory.rules():
        r = spectheory.rule(name)
        V = len(p)
        if not r.supports(n, V) or (not r.drafts.replacement and n > np.sum(q > 0)):
            continue
        a = exact(r, p, q, n)
        assert a.max_error <= 1e-12, (name, n)
        tuples, probs = r.drafts.law(q, n)
        star = brute_alpha(p, tuples, probs)
        assert a.acceptance <= star + 1e-12, (name, n, a.acceptance, star)
        if name == "optimal":
            np.testing.assert_allclose(a.acceptance, star, atol=1e-12)


def test_rsd_below_lp_optimum_and_above_single():
    """RSD has no closed form: its exact acceptance lies between single-draft acceptance and
    the optimum for drafts without replacement."""
    r = spectheory.rule("rsd")
    for seed in range(6):
        p, q = random_pair(5, seed)
        single = np.sum(np.minimum(p, q))
        for n in (2, 3, 4):
            a = exact(r, p, q, n).acceptance
            tuples, probs = D.without_replacement_law(q, n)
            assert single - 1e-12 <= a <= brute_alpha(p, tuples, probs) + 1e-12


# --- draft schemes ---------------------------------------------------------------------------

def test_scheme_laws_hand_values():
    q = np.array([0.5, 0.3, 0.2])
    t, pr = D.without_replacement_law(q, 2)
    law = {tuple(x): v for x, v in zip(t.tolist(), pr)}
    np.testing.assert_allclose(law[(0, 1)], 0.5 * 0.3 / 0.5, atol=1e-15)
    np.testing.assert_allclose(law[(1, 0)], 0.3 * 0.5 / 0.7, atol=1e-15)
    np.testing.assert_allclose(law[(2, 1)], 0.2 * 0.3 / 0.8, atol=1e-15)
    np.testing.assert_allclose(pr.sum(), 1.0, atol=1e-15)
    t, pr = D.greedy_law(np.array([0.1, 0.6, 0.3]), 2)
    assert t.tolist() == [[1, 0], [1, 2]]
    np.testing.assert_allclose(pr, [0.25, 0.75], atol=1e-15)
    t, pr = D.hub_law(np.array([0.2, 0.5, 0.3]), 2)
    law = {tuple(x): v for x, v in zip(t.tolist(), pr)}
    # (z, a) w.p. q(z); (a, z) w.p. q(a) q(z) / (1 - q(a)) with a = 1.
    np.testing.assert_allclose([law[(0, 1)], law[(2, 1)], law[(1, 0)], law[(1, 2)]], [0.2, 0.3, 0.2, 0.3], atol=1e-15)


@pytest.mark.parametrize("scheme,n", [("without_replacement", 3), ("greedy", 3), ("hub", 2), ("iid", 2)])
def test_scheme_sampler_matches_its_law(scheme, n):
    """Chi-squared (alpha = 1e-3, fixed key) of sampled tuples against the enumerated law."""
    sch = D.scheme(scheme)
    q = np.array([0.05, 0.3, 0.0, 0.25, 0.15, 0.25])
    tuples, probs = sch.law(q, n)
    index = {tuple(t): i for i, t in enumerate(tuples.tolist())}
    keys = jax.random.split(jax.random.key(11), 20_000)
    samples = np.asarray(jax.jit(jax.vmap(lambda k, q: sch.sample(k, q, n), in_axes=(0, None)))(keys, jnp.asarray(q)))
    ids = np.array([index.get(tuple(s), -1) for s in samples.tolist()])
    assert ids.min() >= 0, "a sampled tuple is outside the law's support"
    res = chi_square_test(ids, probs, alpha=1e-3)
    assert res.passed, res.p_value
    # eager equals jit for the same key
    e = np.asarray(sch.sample(keys[0], jnp.asarray(q), n))
    np.testing.assert_array_equal(e, samples[0])


# --- edge cases: the jitted cores never return NaN --------------------------------------------

@pytest.mark.parametrize("name", [r for r in MULTI_RULES if r != "optimal"])
def test_jitted_core_finite_on_edge_cases(name):
    """Under jit (batched over the edge cases p == q, one-hot p, zeros in q, zeros in p, and
    V = 1): kernels are finite probability vectors, sampled tokens have positive kernel mass,
    closed-form acceptances are finite and in [0, 1]."""
    r = spectheory.rule(name)
    for V, n in ((1, 1), (5, 2)):
        if not r.supports(n, V):
            continue
        cases = [(p, q) for p, q in edge_pairs(V, seed=3).values() if r.drafts.replacement or n <= np.sum(q > 0)]
        if V == 1:
            cases = [(np.array([1.0]), np.array([1.0]))]
        ps, qs = (jnp.asarray(np.stack(x)) for x in zip(*cases))
        ds = jnp.stack([r.drafts.sample(jax.random.key(i), q, n) for i, q in enumerate(qs)])
        K = np.asarray(jax.jit(jax.vmap(r.verifier.kernel))(ps, qs, ds))
        assert np.all(np.isfinite(K))
        np.testing.assert_allclose(K.sum(axis=1), 1.0, atol=1e-12)
        u = jax.random.uniform(jax.random.key(5), (8, len(cases), r.verifier.num_uniforms(n)), jnp.float64)
        u = u.at[0].set(0.0)
        ver = jax.jit(jax.vmap(jax.vmap(r.verifier.verify_with_uniforms), in_axes=(0, None, None, None)))
        toks = np.asarray(ver(u, ps, qs, ds).token)
        for b in range(len(cases)):
            assert np.all(K[b, toks[:, b]] > 0), (b, toks[:, b])
        if r.verifier.acceptance is not None:
            acc = np.asarray(r.verifier.acceptance(ps, qs, n))
            assert np.all(np.isfinite(acc)) and np.all(acc >= -1e-12) and np.all(acc <= 1 + 1e-12)


def test_optimal_is_host_only():
    p, q = random_pair(3, 0)
    with pytest.raises(TypeError, match="host"):
        jax.jit(Vf.OPTIMAL.kernel)(p, q, jnp.array([0, 1]))


# --- validation ------------------------------------------------------------------------------

GOOD_P, GOOD_Q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])


@pytest.mark.parametrize("name", MULTI_RULES)
def test_input_errors_name_the_argument(name):
    r = spectheory.rule(name)
    n = 2
    d = np.array([0, 1]) if name != "spechub" else np.array([1, 0])
    kern = r.verifier.kernel
    with pytest.raises(ValueError, match="p"):
        kern(np.array([0.2, np.nan, 0.8]), GOOD_Q, d)
    with pytest.raises(ValueError, match="q: contains negative"):
        kern(GOOD_P, np.array([1.2, -0.2, 0.0]), d)
    with pytest.raises(ValueError, match="p: does not sum to 1"):
        kern(np.array([0.2, 0.3, 0.6]), GOOD_Q, d)
    with pytest.raises(ValueError, match="same vocabulary"):
        kern(GOOD_P, np.array([0.5, 0.5]), d)
    with pytest.raises(ValueError, match="p: expected a 1-d"):
        kern(GOOD_P[None], GOOD_Q, d)
    with pytest.raises(ValueError, match="drafts"):
        kern(GOOD_P, GOOD_Q, np.array([0, 3]))
    with pytest.raises(ValueError, match="uniforms"):
        r.verifier.verify_with_uniforms(np.zeros(r.verifier.num_uniforms(n) + 1), GOOD_P, GOOD_Q, d)
    with pytest.raises(ValueError, match="uniforms"):
        r.verifier.verify_with_uniforms(np.full(r.verifier.num_uniforms(n), 1.0), GOOD_P, GOOD_Q, d)
    if r.verifier.acceptance is not None:
        with pytest.raises(ValueError, match="q"):
            r.verifier.acceptance(GOOD_P, np.array([0.5, 0.6, -0.1]), n)


def test_without_replacement_refuses_too_many_drafts():
    q = np.array([0.5, 0.0, 0.5, 0.0])
    assert D.WITHOUT_REPLACEMENT.max_n(4) == 4 and not D.WITHOUT_REPLACEMENT.supports(5, 4)
    with pytest.raises(ValueError, match="too large for drafts without replacement"):
        D.without_replacement_sample(jax.random.key(0), q, 3)
    with pytest.raises(ValueError, match="too large for drafts without replacement"):
        D.without_replacement_law(q, 3)
    with pytest.raises(ValueError, match="too large for drafts without replacement"):
        exact(spectheory.rule("rsd"), np.full(4, 0.25), q, 3)
    with pytest.raises(ValueError, match="too large for drafts without replacement"):
        Vf.RSD.kernel(np.full(4, 0.25), q, np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="distinct"):
        Vf.RSD.kernel(np.full(4, 0.25), q, np.array([0, 0]))
    with pytest.raises(ValueError, match="too large for drafts without replacement"):
        D.greedy_sample(jax.random.key(0), q, 3)
    with pytest.raises(ValueError, match="too large"):
        D.hub_sample(jax.random.key(0), np.array([0.0, 1.0, 0.0]))


def test_other_argument_errors():
    with pytest.raises(ValueError, match="n: expected a positive int"):
        Vf.spectr_rho(GOOD_P, GOOD_Q, 0)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        Vf.specinfer_acceptance(GOOD_P, GOOD_Q, 1.5)
    with pytest.raises(ValueError, match="n = 2"):
        Vf.spechub_acceptance(GOOD_P, GOOD_Q, 3)
    with pytest.raises(ValueError, match="n = 2"):
        D.hub_sample(jax.random.key(0), GOOD_Q, 3)
    with pytest.raises(ValueError, match="hub"):
        Vf.SPECHUB.kernel(GOOD_P, GOOD_Q, np.array([2, 1]))  # argmax q = 0 is missing
    with pytest.raises(ValueError, match="unknown draft scheme"):
        D.scheme("beam")


def test_optimal_refuses_large_lp():
    p = np.full(11, 1 / 11)
    with pytest.raises(ValueError, match="MAX_LP_VARIABLES"):
        Vf.OPTIMAL.acceptance(p, p, 5)  # 11**5 tuples x 11 tokens > 1e6 variables


# --- docstring examples ----------------------------------------------------------------------

@pytest.mark.parametrize("module", [
    "spectheory.verify._specinfer", "spectheory.verify._rsd", "spectheory.verify._spectr",
    "spectheory.verify._greedy", "spectheory.verify._spechub", "spectheory.verify._optimal",
    "spectheory.drafts._without_replacement", "spectheory.drafts._greedy", "spectheory.drafts._hub",
    "spectheory.drafts",
])
def test_docstring_examples(module):
    import importlib
    mod = importlib.import_module(module)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0
