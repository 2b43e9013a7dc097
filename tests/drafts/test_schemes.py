"""Draft schemes: the one identity of a draft law.

For every built-in scheme: ``law`` against an independent enumeration written here
(itertools and the definition of each scheme), ``sample`` and ``children`` against ``law``
(chi-squared at alpha = 1e-3 on fixed keys, exact where the draw is deterministic), ``sample``
equal to ``children`` on ``log q`` for the same key, children on supports smaller than the
fan-out (a valid prefix with the law ``children_law``), and the registry: ``scheme(name)``,
``schemes()``, ``register`` refusing a second scheme under a taken name.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spectheory
from spectheory import _registry
from spectheory.audit import chi_square_test
from spectheory.drafts import GREEDY, HUB, IID, WITHOUT_REPLACEMENT, scheme, schemes
from spectheory.testing import prob_vectors

ALPHA = 1e-3
BUILTIN = ("iid", "without_replacement", "greedy", "hub")
WITH_CHILDREN = ("iid", "without_replacement", "greedy")


# --- independent enumerations (the definition of each scheme) ---------------------------------

def _order(q):
    """Tokens by decreasing q, ties to the lower id (a plain sort key, no argsort)."""
    return sorted(range(len(q)), key=lambda i: (-q[i], i))


def enum_iid(q, n):
    """n independent draws: the product of the marginals over the support."""
    sup = [i for i in range(len(q)) if q[i] > 0]
    return {t: float(np.prod([q[i] for i in t])) for t in itertools.product(sup, repeat=n)}


def enum_wor(q, n):
    """n draws, each from the remaining weights renormalised."""
    sup = [i for i in range(len(q)) if q[i] > 0]
    out = {}
    for t in itertools.permutations(sup, n):
        left, pr = list(q), 1.0
        for i in t:
            pr *= left[i] / sum(left)
            left[i] = 0.0
        out[t] = pr
    return out


def enum_greedy(q, n):
    """The n - 1 most likely tokens, then one draw from the others renormalised."""
    top = tuple(_order(q)[: n - 1])
    rest = [i for i in range(len(q)) if q[i] > 0 and i not in top]
    mass = sum(q[i] for i in rest)
    return {top + (x,): q[x] / mass for x in rest}


def enum_hub(q, n):
    """First ~ q; the second is the hub a = argmax q unless the first is a, then ~ q(.|!= a)."""
    assert n == 2
    a = _order(q)[0]
    out = {}
    for x in range(len(q)):
        if q[x] <= 0:
            continue
        if x != a:
            out[(x, a)] = q[x]
        else:
            for z in range(len(q)):
                if z != a and q[z] > 0:
                    out[(a, z)] = q[a] * q[z] / (1 - q[a])
    return out


ENUM = {"iid": enum_iid, "without_replacement": enum_wor, "greedy": enum_greedy, "hub": enum_hub}


def enum_children(name, q, b):
    """The children a tree node gets with fan-out b: distinct-token schemes draw at most the
    support (the drawn ones form a prefix), i.i.d. always b."""
    support = int(np.sum(np.asarray(q) > 0))
    m = b if name == "iid" else min(b, support)
    if name == "greedy" and m == support:
        return {tuple(_order(q)[:m]): 1.0}  # every token of positive mass, decreasing q
    return ENUM[name](q, m)


def _as_dict(law):
    tuples, probs = law
    assert tuples.dtype == np.int64 and probs.dtype == np.float64
    out = {}
    for t, p in zip(tuples.tolist(), probs.tolist()):
        assert tuple(t) not in out, "a tuple is listed twice"
        out[tuple(t)] = p
    return out


def _supported(s, n, q):
    return s.supports(n, len(q)) and (s.replacement or n <= int(np.sum(np.asarray(q) > 0)))


Q_CASES = [
    np.array([0.1, 0.4, 0.1, 0.4]),  # ties
    np.array([0.5, 0.0, 0.3, 0.2]),  # a zero
    np.array([0.2, 0.5, 0.3]),
    np.array([0.0, 1.0, 0.0]),  # one-hot
    np.array([0.7, 0.3]),
]


# --- the registry -----------------------------------------------------------------------------

def test_builtin_schemes_are_registered_and_resolve():
    assert schemes()[:4] == list(BUILTIN)
    for name in schemes():
        s = scheme(name)
        assert s.name == name and scheme(s) is s and spectheory.drafts.scheme(name) is _registry.scheme(name)
    assert (scheme("iid"), scheme("without_replacement"), scheme("greedy"), scheme("hub")) == (
        IID, WITHOUT_REPLACEMENT, GREEDY, HUB)
    assert [scheme(n).family for n in BUILTIN] == ["iid", "without_replacement", "greedy", "greedy"]
    assert HUB.children is None and all(scheme(n).children is not None for n in WITH_CHILDREN)
    # every registered rule's scheme is the registered object of that name
    for r in spectheory.rules():
        assert scheme(spectheory.rule(r).drafts.name) is spectheory.rule(r).drafts
    with pytest.raises(ValueError, match="scheme: unknown draft scheme 'gumbel'.*iid"):
        scheme("gumbel")
    with pytest.raises(TypeError):
        scheme(3)
    hash(IID), hash(GREEDY)  # static pytree data must be hashable


def test_register_refuses_a_different_scheme_under_a_taken_name(monkeypatch):
    monkeypatch.setattr(_registry, "_SCHEMES", dict(_registry._SCHEMES))  # restored afterwards
    other = IID._replace(sample=lambda key, q, n: IID.sample(key, q, n))
    with pytest.raises(ValueError, match="'iid' is already registered"):
        spectheory.register(other)
    assert scheme("iid") is IID
    assert spectheory.register(IID) is IID  # the same object again is fine
    new = IID._replace(name="test-iid-copy")
    spectheory.register(new)
    assert scheme("test-iid-copy") is new and "test-iid-copy" in schemes()
    with pytest.raises(ValueError, match="already registered"):
        spectheory.register(new._replace(family=None))
    spectheory.register(new._replace(family=None), overwrite=True)
    assert scheme("test-iid-copy").family is None


# --- law: independent enumeration ----------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN)
def test_law_matches_enumeration(name):
    s = scheme(name)
    for q in Q_CASES:
        for n in range(1, 5):
            if not _supported(s, n, q):
                continue
            got = _as_dict(s.law(q, n))
            want = ENUM[name](list(q), n)
            assert set(got) == set(want), (name, q, n)
            np.testing.assert_allclose([got[t] for t in want], list(want.values()), rtol=1e-13, atol=0)
            np.testing.assert_allclose(sum(got.values()), 1.0, atol=1e-14)


@settings(max_examples=30)
@given(q=prob_vectors(min_size=1, max_size=5), n=st.integers(1, 4), name=st.sampled_from(BUILTIN))
def test_law_property(q, n, name):
    s = scheme(name)
    if not _supported(s, n, q):
        with pytest.raises(ValueError):
            s.law(q, n)
        return
    got = _as_dict(s.law(q, n))
    want = ENUM[name](list(q), n)
    assert set(got) == set(want)
    np.testing.assert_allclose([got[t] for t in want], list(want.values()), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sum(got.values()), 1.0, atol=1e-12)
    assert all(p > 0 for p in got.values())


@settings(max_examples=30)
@given(q=prob_vectors(min_size=1, max_size=5), b=st.integers(1, 6), name=st.sampled_from(WITH_CHILDREN))
def test_children_law_matches_enumeration(q, b, name):
    """``children_law(q, b) = law(q, fan_out(b, support))``, also for fan-outs larger than
    the support (greedy: the whole support in decreasing order, a point mass)."""
    s = scheme(name)
    if name == "iid" and int(np.sum(q > 0)) ** b > 5000:
        b = 1
    got = _as_dict(s.children_law(q, b))
    want = enum_children(name, list(q), b)
    assert set(got) == set(want)
    np.testing.assert_allclose([got[t] for t in want], list(want.values()), rtol=1e-12, atol=1e-15)
    assert s.fan_out(b, int(np.sum(q > 0))) == len(next(iter(got)))


def test_law_validation():
    for s in (IID, WITHOUT_REPLACEMENT, GREEDY, HUB):
        with pytest.raises(ValueError, match="n"):
            s.law(np.array([0.5, 0.5, 0.0]), 3 if s is not IID else 0)
    for s in (IID, WITHOUT_REPLACEMENT, GREEDY, HUB):
        with pytest.raises(ValueError, match="q: does not sum to 1"):
            s.law(np.array([0.5, 0.6]), 2)
    with pytest.raises(ValueError, match="n"):
        HUB.law(np.array([0.5, 0.5]), 1)


def test_hub_set_law_is_the_greedy_n2_set_law():
    """SpecHub's draft *set* has the law of greedy drafts with n = 2 (family "greedy")."""
    for q in Q_CASES:
        if np.sum(q > 0) < 2:
            continue
        sets = {}
        for law, sign in ((HUB.law(q, 2), 1.0), (GREEDY.law(q, 2), -1.0)):
            for t, p in zip(*law):
                key = frozenset(t.tolist())
                sets[key] = sets.get(key, 0.0) + sign * p
        np.testing.assert_allclose(list(sets.values()), 0.0, atol=1e-15)


# --- sample and children against the law --------------------------------------------------------

def _chi_square(draws, law):
    keys = list(law)
    idx = {t: i for i, t in enumerate(keys)}
    assert all(tuple(d) in idx for d in draws), "a draw has probability zero"
    return chi_square_test(np.array([idx[tuple(d)] for d in draws]), np.array([law[t] for t in keys]), alpha=ALPHA)


SAMPLE_CASES = [(name, qi, n) for name in BUILTIN for qi in range(len(Q_CASES)) for n in (1, 2, 3)
                if _supported(scheme(name), n, Q_CASES[qi])]


@pytest.mark.parametrize("name,qi,n", SAMPLE_CASES)
def test_sample_has_the_law(name, qi, n):
    """Chi-squared (alpha = 1e-3, fixed keys) of ``sample`` under jit and vmap against the
    independent enumeration; exact when the law is a point mass."""
    s = scheme(name)
    q = jnp.asarray(Q_CASES[qi])
    N = 20_000
    keys = jax.random.split(jax.random.key(100 * qi + 10 * n + BUILTIN.index(name)), N)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: s.sample(k, q, n)))(keys)).tolist()
    want = ENUM[name](list(Q_CASES[qi]), n)
    if len(want) == 1:
        assert all(tuple(d) == next(iter(want)) for d in draws)
        return
    res = _chi_square(draws, want)
    assert res.passed, (name, qi, n, res.p_value)
    # eager == jit for the same key
    for k in keys[:3]:
        jitted = jax.jit(s.sample, static_argnums=2)(k, q, n)
        np.testing.assert_array_equal(np.asarray(s.sample(k, q, n)), np.asarray(jitted))


CHILD_CASES = [(name, qi, b) for name in WITH_CHILDREN for qi in range(len(Q_CASES)) for b in (1, 2, 3, 5)
               if not (name == "iid" and b == 5)]


@pytest.mark.parametrize("name,qi,b", CHILD_CASES)
def test_children_have_the_children_law(name, qi, b):
    """``children(key, log q, b)``: the valid children are a prefix, their law is the
    independent enumeration of ``children_law`` (chi-squared, alpha = 1e-3, fixed keys; exact
    when deterministic); invalid slots carry token 0."""
    s = scheme(name)
    q = Q_CASES[qi]
    logq = jnp.log(jnp.asarray(q))
    N = 20_000
    keys = jax.random.split(jax.random.key(7 + 100 * qi + 10 * b + WITH_CHILDREN.index(name)), N)
    tok, valid = jax.jit(jax.vmap(lambda k: s.children(k, logq, b)))(keys)
    tok, valid = np.asarray(tok), np.asarray(valid)
    assert tok.shape == (N, b) and tok.dtype == np.int32 and valid.dtype == bool
    m = s.fan_out(b, int(np.sum(q > 0)))
    assert np.all(valid[:, :m]) and not np.any(valid[:, m:])
    assert np.all(tok[:, m:] == 0)
    want = enum_children(name, list(q), b)
    draws = tok[:, :m].tolist()
    if len(want) == 1:
        assert all(tuple(d) == next(iter(want)) for d in draws)
        return
    res = _chi_square(draws, want)
    assert res.passed, (name, qi, b, res.p_value)


@pytest.mark.parametrize("name", WITH_CHILDREN)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sample_is_children_on_log_q(name, dtype):
    """The eager ``sample`` and the tree sampler ``children`` share one core: the same draws
    for the same key (so a tree's root children equal a one-position draft tuple)."""
    s = scheme(name)
    for qi, q in enumerate(Q_CASES):
        qq = jnp.asarray(q.astype(dtype))
        for n in (1, 2, 3):
            if not _supported(s, n, q):
                continue
            for k in range(4):
                key = jax.random.key(1000 * qi + k)
                tok, valid = s.children(key, jnp.log(qq), n)
                assert np.all(np.asarray(valid))
                np.testing.assert_array_equal(np.asarray(s.sample(key, qq, n)), np.asarray(tok))


@pytest.mark.parametrize("name", WITH_CHILDREN)
def test_children_vmap_equals_loop_and_never_raises(name):
    s = scheme(name)
    rng = np.random.default_rng(0)
    logq = np.log(rng.dirichlet(np.ones(5), size=6))
    logq[0, :3] = -np.inf  # a row with support 2 < b
    logq = jnp.asarray(logq - np.log(np.sum(np.exp(logq), axis=1, keepdims=True)))
    keys = jax.random.split(jax.random.key(4), 6)
    tok, valid = jax.vmap(lambda k, l: s.children(k, l, 3))(keys, logq)
    for i in range(6):
        t1, v1 = s.children(keys[i], logq[i], 3)
        np.testing.assert_array_equal(np.asarray(tok[i]), np.asarray(t1))
        np.testing.assert_array_equal(np.asarray(valid[i]), np.asarray(v1))
    if name != "iid":
        assert np.asarray(valid[0]).tolist() == [True, True, False]
        assert set(np.asarray(tok[0, :2]).tolist()) == {3, 4}
    # a fan-out larger than V is fine too
    t, v = s.children(keys[0], logq[1], 7)
    assert t.shape == (7,) and int(np.sum(np.asarray(v))) == (7 if name == "iid" else 5)


def test_sample_validation():
    q = jnp.array([0.5, 0.5, 0.0])
    for s in (WITHOUT_REPLACEMENT, GREEDY):
        with pytest.raises(ValueError, match="positive mass"):
            s.sample(jax.random.key(0), q, 3)
    for s in (IID, WITHOUT_REPLACEMENT, GREEDY, HUB):
        with pytest.raises(ValueError, match="q: "):
            s.sample(jax.random.key(0), jnp.array([0.5, 0.6]), 2)
    with pytest.raises(ValueError, match="n"):
        IID.sample(jax.random.key(0), q, 0)
    with pytest.raises(ValueError, match="n = 2"):
        HUB.sample(jax.random.key(0), q, 3)
