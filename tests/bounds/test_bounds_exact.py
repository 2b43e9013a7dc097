"""α* three ways: closed form / prefix scan, brute force over subsets, and the transport LP.

Draft laws are built here by small independent enumerators (not by ``spectheory.drafts``), and
the reference values come from enumeration: a naive loop over all subsets, or the LP.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from spectheory.bounds import (
    all_in_probability,
    collapse_draft_sets,
    lp_acceptance,
    optimal_acceptance,
    subset_bound,
)
from spectheory.bounds import _optimal, _race
from spectheory.drafts import GREEDY, HUB, IID, WITHOUT_REPLACEMENT

# ----------------------------------------------------------------------------------------------
# independent enumerators of draft laws (ordered tuples with their probabilities)
# ----------------------------------------------------------------------------------------------


def iid_law(q, n):
    """n i.i.d. drafts: the product law over V**n ordered tuples."""
    q = np.asarray(q, np.float64)
    tuples = np.array(list(itertools.product(range(q.size), repeat=n)), dtype=np.int64).reshape(-1, n)
    probs = np.prod(q[tuples], axis=1)
    keep = probs > 0
    return tuples[keep], probs[keep]


def wor_law(q, n):
    """n sequential draws without replacement: P = prod_j q(x_j) / (mass not yet drawn).

    The remaining mass is summed from the remaining tokens (not formed as 1 - drawn), so the
    law stays accurate when a few tokens hold almost all the mass.
    """
    q = np.asarray(q, np.float64)
    tuples, probs = [], []
    for tup in itertools.permutations(range(q.size), n):
        remaining = np.ones(q.size, bool)
        pr = 1.0
        for x in tup:
            den = q[remaining].sum()
            if q[x] == 0 or den <= 0:
                pr = 0.0
                break
            pr *= q[x] / den
            remaining[x] = False
        if pr > 0:
            tuples.append(tup)
            probs.append(pr)
    return np.array(tuples, dtype=np.int64).reshape(-1, n), np.array(probs)


def greedy_law(q, n):
    """Hu et al.'s greedy drafts: the n-1 most likely tokens (ties to the lower id) are fixed,
    the last draft comes from q restricted to the other tokens, renormalised."""
    q = np.asarray(q, np.float64)
    top = [int(i) for i in np.argsort(-q, kind="stable")[: n - 1]]
    rest = [y for y in range(q.size) if y not in top]
    mass = q[rest].sum()
    tuples = [top + [y] for y in rest if q[y] > 0]
    probs = [q[y] / mass for y in rest if q[y] > 0]
    return np.array(tuples, dtype=np.int64).reshape(-1, n), np.array(probs)


LAWS = {"iid": iid_law, "without_replacement": wor_law, "greedy": greedy_law}


def naive_dual(p, tuples, probs):
    """min over every subset H of p(H) + 1 - Q(all drafts in H), by a plain loop."""
    V = len(p)
    best = np.inf
    for bits in itertools.product([False, True], repeat=V):
        H = np.array(bits)
        val = p[H].sum() + 1 - probs[np.all(H[tuples], axis=1)].sum()
        best = min(best, val)
    return best


def dual_objective(p, tuples, probs, H):
    H = np.asarray(H, bool)
    return p[H].sum() + 1 - probs[np.all(H[tuples], axis=1)].sum()


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------


@st.composite
def law_pair(draw, max_v=7, max_n=4, schemes=("iid", "without_replacement", "greedy")):
    """(p, q, n, scheme) with exact zeros and ties (integer weights) or generic floats."""
    V = draw(st.integers(1, max_v))
    scheme = draw(st.sampled_from(schemes))
    kind = draw(st.sampled_from(["int", "float"]))
    if kind == "int":
        w = st.integers(0, 4)
    else:
        w = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))
    pw = np.array(draw(st.lists(w, min_size=V, max_size=V)), np.float64)
    qw = np.array(draw(st.lists(w, min_size=V, max_size=V)), np.float64)
    if pw.sum() == 0:
        pw[draw(st.integers(0, V - 1))] = 1.0
    if qw.sum() == 0:
        qw[draw(st.integers(0, V - 1))] = 1.0
    p, q = pw / pw.sum(), qw / qw.sum()
    hi = min(max_n, V if scheme == "iid" else int((q > 0).sum()))
    n = draw(st.integers(1, hi))
    return p, q, n, scheme


def padded(x, V=8):
    """Zero-pad a law to V tokens (padding tokens have p = q = 0 and cannot change α*); it keeps
    the number of distinct jit shapes, hence compile time, small under hypothesis."""
    return np.concatenate([x, np.zeros(V - len(x))])


# ----------------------------------------------------------------------------------------------
# optimal_acceptance == brute force == LP
# ----------------------------------------------------------------------------------------------


@given(law_pair())
def test_optimal_matches_subsets_and_lp(case):
    p, q, n, scheme = case
    tuples, probs = LAWS[scheme](q, n)
    expected = naive_dual(p, tuples, probs)
    res = optimal_acceptance(jnp.asarray(padded(p)), jnp.asarray(padded(q)), n, scheme)
    np.testing.assert_allclose(float(res.value), expected, rtol=0, atol=1e-9)
    H = np.asarray(res.certificate)
    assert not H[len(p):].any()
    np.testing.assert_allclose(dual_objective(p, tuples, probs, H[: len(p)]), expected, rtol=0, atol=1e-9)
    sb = subset_bound(p, tuples, probs)
    np.testing.assert_allclose(sb.value, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dual_objective(p, tuples, probs, sb.certificate), expected, rtol=0, atol=1e-12)
    lp = lp_acceptance(p, tuples, probs, "pot")
    np.testing.assert_allclose(lp.value, expected, rtol=0, atol=1e-9)


def prefix_orders(p, q):
    """Every order of the tokens by p/q ascending (q = 0 last) that is consistent with ties."""
    key = [p[i] / q[i] if q[i] > 0 else math.inf for i in range(len(p))]
    return [o for o in itertools.permutations(range(len(p))) if all(key[o[k]] <= key[o[k + 1]] for k in range(len(o) - 1))]


@given(law_pair(max_v=6, schemes=("without_replacement",)))
def test_without_replacement_prefix_property(case):
    """The optimal H is a prefix of the p/q order, for every tie-breaking of that order."""
    p, q, n, _ = case
    tuples, probs = wor_law(q, n)
    brute = naive_dual(p, tuples, probs)
    orders = prefix_orders(p, q)
    for order in orders[:6]:
        best_prefix = min(dual_objective(p, tuples, probs, np.isin(np.arange(len(p)), order[:m])) for m in range(len(p) + 1))
        np.testing.assert_allclose(best_prefix, brute, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
@pytest.mark.parametrize("V,n", [(1, 1), (3, 2), (5, 3), (6, 4), (7, 2)])
def test_optimal_unpadded_shapes(scheme, V, n):
    rng = np.random.default_rng(100 * V + n)
    p = rng.dirichlet(np.ones(V) * 0.5)
    q = rng.dirichlet(np.ones(V) * 0.5)
    tuples, probs = LAWS[scheme](q, n)
    expected = naive_dual(p, tuples, probs)
    res = optimal_acceptance(p, q, n, scheme)
    np.testing.assert_allclose(float(res.value), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dual_objective(p, tuples, probs, np.asarray(res.certificate)), expected, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Q(all drafts in H): closed forms and the quadrature
# ----------------------------------------------------------------------------------------------


def wor2_closed_form(q, H):
    lam = q[~H].sum()
    return 1 - lam * (1 + np.sum(q[H] / (1 - q[H])))


@pytest.mark.parametrize("seed", range(6))
def test_wor_n2_closed_form_matches_enumeration_and_quadrature(seed):
    rng = np.random.default_rng(seed)
    V = 6
    q = rng.dirichlet(np.ones(V) * (0.3 if seed % 2 else 2.0))
    tuples, probs = wor_law(q, 2)
    for H in itertools.product([False, True], repeat=V):
        H = np.array(H)
        enum = probs[np.all(H[tuples], axis=1)].sum()
        np.testing.assert_allclose(wor2_closed_form(q, H), enum, rtol=0, atol=1e-12)
    Hs = np.array(list(itertools.product([False, True], repeat=V)))
    quad = all_in_probability(jnp.asarray(q), jnp.asarray(Hs), 2, "without_replacement")
    expected = np.array([wor2_closed_form(q, H) for H in Hs])
    np.testing.assert_allclose(np.asarray(quad), expected, rtol=0, atol=1e-10)


@jax.jit
def _quadrature_scan_n2(p, q):
    perm, _ = _optimal._sort_by_ratio(_optimal._ratios(p, q))
    ps = jnp.take_along_axis(p, perm, -1)
    qs = jnp.take_along_axis(q, perm, -1)
    return _race._wor_scan_best(ps, qs, 2, 64)[0]


def test_wor_quadrature_scan_agrees_with_n2_closed_form_path():
    """The n >= 3 machinery (prefix scan with quadrature) run at n = 2 reproduces the exact
    closed-form path of optimal_acceptance."""
    rng = np.random.default_rng(0)
    p = jnp.asarray(np.concatenate([rng.dirichlet(np.ones(9) * c, size=2) for c in (0.1, 0.4, 2.0)]))
    q = jnp.asarray(np.concatenate([rng.dirichlet(np.ones(9) * c, size=2) for c in (0.1, 0.4, 2.0)]))
    closed = optimal_acceptance(p, q, 2, "without_replacement").value
    np.testing.assert_allclose(np.asarray(_quadrature_scan_n2(p, q)), np.asarray(closed), rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", [3, 4, 5])
@pytest.mark.parametrize("concentration", [0.05, 0.3, 3.0])
def test_wor_quadrature_accuracy_float64(n, concentration):
    """Quadrature vs enumeration for every subset: |error| <= 1e-9 in float64."""
    rng = np.random.default_rng(n * 7 + int(concentration * 10))
    V = 6
    for _ in range(3):
        q = rng.dirichlet(np.ones(V) * concentration)
        q = np.where(q < 1e-9, 0.0, q)
        q /= q.sum()
        if (q > 0).sum() < n:
            continue
        tuples, probs = wor_law(q, n)
        Hs = np.array(list(itertools.product([False, True], repeat=V)))
        enum = np.array([probs[np.all(H[tuples], axis=1)].sum() for H in Hs])
        quad = all_in_probability(jnp.asarray(q), jnp.asarray(Hs), n, "without_replacement")
        np.testing.assert_allclose(np.asarray(quad), enum, rtol=0, atol=1e-9)


def test_wor_quadrature_accuracy_float32():
    """Documented float32 accuracy of the default 24-node quadrature: better than 1e-5."""
    rng = np.random.default_rng(3)
    V, n = 6, 3
    Hs = np.array(list(itertools.product([False, True], repeat=V)))
    for _ in range(4):
        q = rng.dirichlet(np.ones(V) * 0.5)
        tuples, probs = wor_law(q, n)
        enum = np.array([probs[np.all(H[tuples], axis=1)].sum() for H in Hs])
        quad = all_in_probability(jnp.asarray(q, jnp.float32), jnp.asarray(Hs), n, "without_replacement")
        assert quad.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(quad, np.float64), enum, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scheme", ["iid", "greedy"])
def test_all_in_probability_closed_forms(scheme):
    rng = np.random.default_rng(11)
    q = rng.dirichlet(np.ones(5))
    n = 3
    tuples, probs = LAWS[scheme](q, n)
    Hs = np.array(list(itertools.product([False, True], repeat=5)))
    enum = np.array([probs[np.all(H[tuples], axis=1)].sum() for H in Hs])
    got = all_in_probability(jnp.asarray(q), jnp.asarray(Hs), n, scheme)
    np.testing.assert_allclose(np.asarray(got), enum, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# structure: monotonicity, ordering of schemes, permutation equivariance, padding
# ----------------------------------------------------------------------------------------------


@given(law_pair(max_v=6, max_n=3, schemes=("without_replacement",)))
def test_scheme_ordering_and_monotone_in_n(case):
    p, q, n, _ = case
    P, Q = jnp.asarray(padded(p)), jnp.asarray(padded(q))
    iid = float(optimal_acceptance(P, Q, n, "iid").value)
    wor = float(optimal_acceptance(P, Q, n, "without_replacement").value)
    assert wor >= iid - 1e-12  # Q_wor(all in H) <= q(H)^n for every H
    if n + 1 <= int((q > 0).sum()):
        wor_next = float(optimal_acceptance(P, Q, n + 1, "without_replacement").value)
        assert wor_next >= wor - 1e-10  # a verifier may ignore the last draft
    single = float(np.minimum(p, q).sum())
    np.testing.assert_allclose(float(optimal_acceptance(P, Q, 1, "iid").value), single, atol=1e-12)
    assert iid >= single - 1e-12


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_permutation_equivariance(scheme):
    rng = np.random.default_rng(5)
    V = 50
    p = rng.dirichlet(np.ones(V) * 0.3)
    q = rng.dirichlet(np.ones(V) * 0.3)
    perm = rng.permutation(V)
    a = optimal_acceptance(p, q, 4, scheme)
    b = optimal_acceptance(p[perm], q[perm], 4, scheme)
    np.testing.assert_allclose(float(b.value), float(a.value), rtol=0, atol=1e-10)
    # the certificate moves with the tokens (generic laws: no ties)
    np.testing.assert_array_equal(np.asarray(b.certificate), np.asarray(a.certificate)[perm])


# ----------------------------------------------------------------------------------------------
# larger V: independent NumPy prefix scan (iid, wor n=2) and certificate consistency
# ----------------------------------------------------------------------------------------------


def numpy_prefix_reference(p, q, n, scheme):
    """Sort-based α* in NumPy (float64): iid, and without replacement for n = 2 (closed form)."""
    key = np.where(q > 0, p / np.where(q > 0, q, 1), np.inf)
    o = np.lexsort((np.arange(len(p)), key))
    ps, qs = p[o], q[o]
    P = np.concatenate([[0.0], np.cumsum(ps)])
    Qc = np.concatenate([[0.0], np.cumsum(qs)])
    if scheme == "iid":
        Q = Qc**n
    else:
        lam = np.concatenate([np.cumsum(qs[::-1])[::-1], [0.0]])
        odds = np.concatenate([[0.0], np.cumsum(qs / (1 - qs))])
        Q = 1 - lam * (1 + odds)
        Q[0] = 0.0
    return float(np.min(P + 1 - Q))


@pytest.mark.parametrize("scheme,n", [("iid", 2), ("iid", 8), ("without_replacement", 2)])
def test_against_numpy_reference_large_v(scheme, n):
    rng = np.random.default_rng(n)
    V = 1000
    logits = rng.standard_normal((3, V)) * 2.5
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ql = logits + rng.standard_normal((3, V))
    q = np.exp(ql) / np.exp(ql).sum(-1, keepdims=True)
    got = optimal_acceptance(p, q, n, scheme).value
    want = [numpy_prefix_reference(p[i], q[i], n, scheme) for i in range(3)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-10)
    got32 = optimal_acceptance(p.astype(np.float32), q.astype(np.float32), n, scheme).value
    np.testing.assert_allclose(np.asarray(got32, np.float64), want, rtol=0, atol=2e-5)


@pytest.mark.parametrize("n", [3, 8])
def test_wor_large_v_certificate_and_dtypes(n):
    """At V = 600: value == p(H) + 1 - Q(H) at the certificate (Q by the same quadrature but an
    order-free product), no neighbouring prefix does better, and float32 agrees with float64."""
    rng = np.random.default_rng(n)
    V = 600
    logits = rng.standard_normal((2, V)) * 2.5
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ql = logits + rng.standard_normal((2, V))
    q = np.exp(ql) / np.exp(ql).sum(-1, keepdims=True)
    res = optimal_acceptance(p, q, n, "without_replacement")
    H = np.asarray(res.certificate)
    QH = all_in_probability(q, H, n, "without_replacement")
    np.testing.assert_allclose(np.asarray(res.value), (p * H).sum(-1) + 1 - np.asarray(QH), rtol=0, atol=1e-10)
    # iid is a lower bound, the single draft a lower bound of that
    iid = optimal_acceptance(p, q, n, "iid").value
    assert np.all(np.asarray(res.value) >= np.asarray(iid) - 1e-12)
    res32 = optimal_acceptance(p.astype(np.float32), q.astype(np.float32), n, "without_replacement")
    np.testing.assert_allclose(np.asarray(res32.value, np.float64), np.asarray(res.value), rtol=0, atol=5e-5)


def test_sort_paths_agree():
    """The packed-int64 key and the float-key fallback give the same order and prefix masks."""
    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.dirichlet(np.ones(40) * 0.3, size=3))
    q = jnp.asarray(np.where(rng.random((3, 40)) < 0.2, 0, rng.dirichlet(np.ones(40) * 0.3, size=3)))
    r = _optimal._ratios(p, q)
    for x in (r, r.astype(jnp.float32)):
        perm_a, before_a = _optimal._sort_by_ratio(x, packed=True)
        perm_b, before_b = _optimal._sort_by_ratio(x, packed=False)
        np.testing.assert_array_equal(np.asarray(perm_a), np.asarray(perm_b))
        for m in [0, 17, 40]:
            mm = jnp.full((3,), m, jnp.int32)
            np.testing.assert_array_equal(np.asarray(before_a(mm)), np.asarray(before_b(mm)))
            expected = np.zeros((3, 40), bool)
            np.put_along_axis(expected, np.asarray(perm_a)[:, :m], True, axis=-1)
            np.testing.assert_array_equal(np.asarray(before_a(mm)), expected)


# ----------------------------------------------------------------------------------------------
# edge cases, jit, vmap, validation
# ----------------------------------------------------------------------------------------------

EDGE = {
    "p==q": (np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])),
    "one-hot p": (np.array([0.0, 1.0, 0.0]), np.array([0.2, 0.3, 0.5])),
    "zeros in q": (np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.5, 0.0])),
    "disjoint": (np.array([0.0, 0.0, 1.0]), np.array([0.5, 0.5, 0.0])),
}


@pytest.mark.parametrize("name", list(EDGE))
@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_edge_cases_under_jit(name, scheme, dtype):
    p, q = EDGE[name]
    n = 2
    tuples, probs = LAWS[scheme](q, n)
    expected = naive_dual(p, tuples, probs)
    f = jax.jit(functools.partial(optimal_acceptance, n=n, scheme=scheme))
    res = f(jnp.asarray(p, dtype), jnp.asarray(q, dtype))
    assert res.value.dtype == dtype
    assert np.isfinite(float(res.value))
    np.testing.assert_allclose(float(res.value), expected, rtol=0, atol=1e-6 if dtype == jnp.float32 else 1e-10)
    if name == "p==q":
        np.testing.assert_allclose(float(res.value), 1.0, atol=1e-6)


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_single_token_vocabulary(scheme):
    res = optimal_acceptance(jnp.ones(1), jnp.ones(1), 1, scheme)
    np.testing.assert_allclose(float(res.value), 1.0)


@pytest.mark.parametrize("scheme", ["without_replacement", "greedy"])
def test_too_many_drafts_under_jit_is_nan(scheme):
    """n larger than the support of q: the eager call raises, under jit and vmap the row is NaN
    (never a plausible number) while a legal row of the same batch keeps its value."""
    q_bad, q_ok = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.4, 0.3, 0.3])
    with pytest.raises(ValueError, match="n=3"):
        optimal_acceptance(q_bad, q_bad, 3, scheme)
    f = jax.jit(functools.partial(optimal_acceptance, n=3, scheme=scheme))
    assert np.isnan(float(f(q_bad, q_bad).value))
    both = jax.vmap(functools.partial(optimal_acceptance, n=3, scheme=scheme))(jnp.stack([q_bad, q_ok]),
                                                                           jnp.stack([q_bad, q_ok]))
    assert np.isnan(float(both.value[0]))
    np.testing.assert_allclose(float(both.value[1]), float(optimal_acceptance(q_ok, q_ok, 3, scheme).value))


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_jit_vmap_and_batching(scheme):
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(12) * 0.5, size=(2, 3))
    q = rng.dirichlet(np.ones(12) * 0.5, size=(3,))
    batched = optimal_acceptance(p, q, 3, scheme)  # q broadcasts over the leading axis
    assert batched.value.shape == (2, 3) and batched.certificate.shape == (2, 3, 12)
    loop = np.array([[float(optimal_acceptance(p[i, j], q[j], 3, scheme).value) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(batched.value), loop, rtol=0, atol=1e-12)
    f = functools.partial(optimal_acceptance, n=3, scheme=scheme)
    jitted = jax.jit(f)(jnp.asarray(p), jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(jitted.value), np.asarray(batched.value), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(jitted.certificate), np.asarray(batched.certificate))
    vm = jax.vmap(jax.vmap(f, in_axes=(0, 0)), in_axes=(0, None))(jnp.asarray(p), jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(vm.value), np.asarray(batched.value), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(p=np.ones(3) / 3, q=np.ones(4) / 4, n=1), "same vocabulary"),
        (dict(p=np.array([0.5, np.nan, 0.5]), q=np.ones(3) / 3, n=1), "p: contains NaN"),
        (dict(p=np.ones(3) / 3, q=np.array([0.6, -0.1, 0.5]), n=1), "q: contains negative"),
        (dict(p=np.array([0.5, 0.6, 0.1]), q=np.ones(3) / 3, n=1), "p: does not sum to 1"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=0), "n: expected a positive int"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=2.0), "n: expected a positive int"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=4, scheme="without_replacement"), "n=4 is too large"),
        (dict(p=np.ones(3) / 3, q=np.array([0.5, 0.5, 0.0]), n=3, scheme="greedy"), "n=3 is too large"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=1, scheme="beam"), "scheme: unknown draft scheme 'beam'"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=1, scheme=3), "scheme: expected a DraftScheme"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=3, scheme="hub"), "n: draft scheme 'hub' does not draw n=3"),
        (dict(p=np.ones(3) / 3, q=np.ones(3) / 3, n=3, scheme="without_replacement", num_nodes=1), "num_nodes"),
        (dict(p=np.float64(1.0), q=np.ones(1), n=1), "p: expected a non-empty last axis"),
    ],
)
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimal_acceptance(**kwargs)


def test_all_in_probability_validation():
    with pytest.raises(ValueError, match="H: expected a mask"):
        all_in_probability(np.ones(3) / 3, np.ones(4, bool), 2)
    with pytest.raises(ValueError, match="n=4 is too large"):
        all_in_probability(np.ones(3) / 3, np.ones(3, bool), 4, "without_replacement")
    with pytest.raises(ValueError, match="scheme: unknown draft scheme"):
        all_in_probability(np.ones(3) / 3, np.ones(3, bool), 2, "gumbel")


# ----------------------------------------------------------------------------------------------
# the scheme argument: a DraftScheme or a registered name, dispatched on its set-law family
# ----------------------------------------------------------------------------------------------


def test_scheme_objects_and_names_agree():
    rng = np.random.default_rng(21)
    p = rng.dirichlet(np.ones(9), size=4)
    q = rng.dirichlet(np.ones(9), size=4)
    for s in (IID, WITHOUT_REPLACEMENT, GREEDY):
        by_name = optimal_acceptance(p, q, 3, s.name)
        by_obj = optimal_acceptance(p, q, 3, s)
        np.testing.assert_array_equal(np.asarray(by_obj.value), np.asarray(by_name.value))
        np.testing.assert_array_equal(np.asarray(by_obj.certificate), np.asarray(by_name.certificate))
        # under jit the scheme object is static, like the name
        jitted = jax.jit(functools.partial(optimal_acceptance, n=3, scheme=s))(jnp.asarray(p), jnp.asarray(q))
        np.testing.assert_allclose(np.asarray(jitted.value), np.asarray(by_obj.value), rtol=0, atol=1e-12)
        H = rng.random((4, 9)) < 0.5
        np.testing.assert_array_equal(np.asarray(all_in_probability(q, H, 3, s)),
                                      np.asarray(all_in_probability(q, H, 3, s.name)))


def test_hub_scheme_is_bounded_by_its_set_law():
    """SpecHub's hub drafts (family "greedy", n = 2 only): alpha* equals the transport LP on the
    hub law enumerated here (first ~ q, second the hub or a draw from the rest)."""
    rng = np.random.default_rng(5)
    for _ in range(5):
        V = int(rng.integers(2, 6))
        p, q = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
        a = int(np.argmax(q))
        tuples, probs = [], []
        for x in range(V):
            if x != a:
                tuples.append((x, a))
                probs.append(q[x])
            else:
                for z in range(V):
                    if z != a:
                        tuples.append((a, z))
                        probs.append(q[a] * q[z] / (1 - q[a]))
        want = lp_acceptance(p, np.array(tuples), np.array(probs)).value
        got = float(optimal_acceptance(p, q, 2, HUB).value)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
        np.testing.assert_allclose(float(optimal_acceptance(p, q, 2, "hub").value), got, rtol=0, atol=0)


def test_scheme_family_must_be_known():
    p = q = np.ones(3) / 3
    no_family = IID._replace(name="test-no-family", family=None)
    odd_family = IID._replace(name="test-odd-family", family="beam")
    for s in (no_family, odd_family):
        with pytest.raises(ValueError, match=f"scheme: draft scheme '{s.name}' has set-law family"):
            optimal_acceptance(p, q, 2, s)
        with pytest.raises(ValueError, match="scheme: draft scheme"):
            all_in_probability(q, np.ones(3, bool), 2, s)
    # an unregistered scheme object with a known family is dispatched on it
    mine = WITHOUT_REPLACEMENT._replace(name="test-my-wor")
    np.testing.assert_allclose(float(optimal_acceptance(p, q, 2, mine).value),
                               float(optimal_acceptance(p, q, 2, "without_replacement").value), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------
# the LP: certificates, backends, collapsing
# ----------------------------------------------------------------------------------------------


def acceptance_matrix(tuples, V):
    A = np.zeros((len(tuples), V), bool)
    for i, t in enumerate(tuples):
        A[i, list(t)] = True
    return A


def check_lp_certificate(res, p, tuples, probs, atol=1e-9):
    A = acceptance_matrix(tuples, len(p))
    np.testing.assert_allclose(res.plan.sum(axis=1), probs, rtol=0, atol=atol)  # row marginals
    np.testing.assert_allclose(res.plan.sum(axis=0), p, rtol=0, atol=atol)  # column marginals
    assert res.plan.min() >= -atol
    np.testing.assert_allclose(np.sum(res.plan * A), res.value, rtol=0, atol=atol)  # primal value
    np.testing.assert_allclose(res.row_duals @ probs + res.col_duals @ p, res.value, rtol=0, atol=atol)  # dual value
    reduced = res.row_duals[:, None] + res.col_duals[None, :] - A
    assert reduced.min() >= -atol  # dual feasibility
    np.testing.assert_allclose(reduced[res.plan > atol], 0, rtol=0, atol=atol)  # complementary slackness


@given(law_pair(max_v=7, max_n=4))
def test_lp_certificates_and_backends(case):
    p, q, n, scheme = case
    tuples, probs = LAWS[scheme](q, n)
    pot = lp_acceptance(p, tuples, probs, "pot")
    check_lp_certificate(pot, p, tuples, probs)
    cvx = lp_acceptance(p, tuples, probs, "cvxpy")
    check_lp_certificate(cvx, p, tuples, probs, atol=1e-7)
    np.testing.assert_allclose(cvx.value, pot.value, rtol=0, atol=1e-7)
    np.testing.assert_allclose(pot.value, naive_dual(p, tuples, probs), rtol=0, atol=1e-9)


def test_lp_collapse_is_exact():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(5))
    q = rng.dirichlet(np.ones(5))
    tuples, probs = iid_law(q, 3)
    a = lp_acceptance(p, tuples, probs, collapse=True)
    b = lp_acceptance(p, tuples, probs, collapse=False)
    np.testing.assert_allclose(a.value, b.value, rtol=0, atol=1e-12)
    check_lp_certificate(a, p, tuples, probs)
    check_lp_certificate(b, p, tuples, probs)
    inverse, members = collapse_draft_sets(np.array([[0, 1, 1], [1, 0, 0], [2, 2, 2], [1, 2, 0]]), 4)
    assert inverse[0] == inverse[1] and len(set(inverse.tolist())) == 3
    np.testing.assert_array_equal(members[inverse[2]], [False, False, True, False])
    np.testing.assert_array_equal(members[inverse[3]], [True, True, True, False])


def test_lp_v40_n3_pot():
    """The acceptance LP at V = 40 with 3 iid drafts (64,000 ordered tuples) via POT."""
    rng = np.random.default_rng(40)
    p = rng.dirichlet(np.ones(40) * 0.5)
    q = rng.dirichlet(np.ones(40) * 0.5)
    tuples, probs = iid_law(q, 3)
    assert tuples.shape == (64000, 3)
    res = lp_acceptance(p, tuples, probs, "pot")
    assert res.plan.shape == (64000, 40)
    np.testing.assert_allclose(res.value, float(optimal_acceptance(p, q, 3, "iid").value), rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.plan.sum(0), p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.row_duals @ probs + res.col_duals @ p, res.value, rtol=0, atol=1e-9)


def test_lp_and_subset_validation():
    p = np.ones(3) / 3
    t = np.array([[0, 1], [1, 2]])
    w = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="solver"):
        lp_acceptance(p, t, w, "glpk")
    with pytest.raises(ValueError, match="tuples: token id out of range"):
        lp_acceptance(p, np.array([[0, 3], [1, 2]]), w)
    with pytest.raises(ValueError, match="probs: expected 2 entries"):
        lp_acceptance(p, t, np.ones(3) / 3)
    with pytest.raises(ValueError, match="probs: does not sum to 1"):
        subset_bound(p, t, np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="tuples: expected integer"):
        subset_bound(p, t.astype(float), w)
    with pytest.raises(ValueError, match="too large for brute force"):
        subset_bound(np.ones(17) / 17, t, w)
    with pytest.raises(ValueError, match="p: contains negative"):
        subset_bound(np.array([1.5, -0.5, 0.0]), t, w)


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_all_in_probability_vmap_and_jit(scheme):
    rng = np.random.default_rng(12)
    q = rng.dirichlet(np.ones(7), size=5)
    H = rng.random((5, 7)) < 0.6
    f = functools.partial(all_in_probability, n=3, scheme=scheme)
    loop = np.array([float(f(q[i], H[i])) for i in range(5)])
    np.testing.assert_allclose(np.asarray(f(q, H)), loop, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(jnp.asarray(q), jnp.asarray(H))), loop, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(jnp.asarray(q), jnp.asarray(H))), loop, rtol=0, atol=1e-12)
    tuples, probs = LAWS[scheme](q[0], 3)
    np.testing.assert_allclose(loop[0], probs[np.all(H[0][tuples], axis=1)].sum(), rtol=0, atol=1e-9)
