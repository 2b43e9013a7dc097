"""The verifier factory: every verifier's key form is its uniform form on uniform(key), every
front door names the faulty argument, and make_verifier turns a rule's mathematics into a
working, lossless verifier."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

import spectheory
from spectheory import drafts as D
from spectheory import verify as Vf
from spectheory.audit import exact
from spectheory.testing import prob_pairs

from _cases import edge_pairs, random_pair

VALUES = {name: getattr(Vf, name) for name in ("SINGLE", "SPECINFER", "RSD", "SPECTR", "GREEDY_OPTIMAL", "SPECHUB", "OPTIMAL")}
#: the draft scheme each verifier value assumes
VALUE_SCHEMES = {"SINGLE": D.IID, "SPECINFER": D.IID, "RSD": D.WITHOUT_REPLACEMENT, "SPECTR": D.IID,
                 "GREEDY_OPTIMAL": D.GREEDY, "SPECHUB": D.HUB, "OPTIMAL": D.IID}
CHAINS = {"TOKEN": Vf.TOKEN, "BLOCK": Vf.BLOCK}


def _cases():
    """(id, verifier, scheme, n) for every registered rule and every verifier value."""
    out = []
    for name in spectheory.rules():
        r = spectheory.rule(name)
        out.append((f"rule-{name}", r.verifier, r.drafts, r.fixed_n))
    for name, ver in VALUES.items():
        out.append((f"value-{name}", ver, VALUE_SCHEMES[name], {"SINGLE": 1, "SPECHUB": 2}.get(name)))
    return out


CASES = _cases()
IDS = [c[0] for c in CASES]


def _ns(ver, scheme, fixed_n, V):
    ns = [fixed_n] if fixed_n is not None else [1, 2, 3]
    if ver.host_only:
        ns = [n for n in ns if n <= 2]
    return [n for n in ns if scheme.supports(n, V)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_verify_is_verify_with_uniforms_on_uniform_key(case):
    """verify(key, ...) == verify_with_uniforms(uniform(key, (num_uniforms(n),), dtype), ...),
    eagerly and (for JAX verifiers) under jit, float32 and float64, several keys and n."""
    _, ver, scheme, fixed_n = case
    V = 4
    for n in _ns(ver, scheme, fixed_n, V):
        for seed, dtype in [(0, np.float64), (1, np.float32), (2, np.float64)]:
            p, q = random_pair(V, 10 * n + seed, zeros=seed == 2)
            p, q = p.astype(dtype), q.astype(dtype)
            if not scheme.replacement and n > np.sum(q > 0):
                continue
            d = scheme.sample(jax.random.key(100 + seed), jnp.asarray(q), n)
            for k in range(4):
                key = jax.random.key(1000 * n + 10 * seed + k)
                u = jax.random.uniform(key, (ver.num_uniforms(n),), jnp.dtype(dtype))
                a = ver.verify(key, p, q, d)
                b = ver.verify_with_uniforms(u, p, q, d)
                assert (int(a.token), int(a.index)) == (int(b.token), int(b.index)), (n, seed, k)
                if not ver.host_only:
                    c = jax.jit(ver.verify)(key, p, q, d)
                    assert (int(c.token), int(c.index)) == (int(b.token), int(b.index)), (n, seed, k)


@pytest.mark.parametrize("name", list(CHAINS))
def test_chain_verify_is_verify_with_uniforms_on_uniform_key(name):
    ver = CHAINS[name]
    assert isinstance(ver, spectheory.ChainVerifier) and ver.name == name.lower()
    rng = np.random.default_rng(0)
    V = 4
    for gamma in range(4):
        for dtype in (np.float64, np.float32):
            p64 = rng.dirichlet(np.ones(V) * 0.6, size=gamma + 1)
            q64 = rng.dirichlet(np.ones(V) * 0.6, size=gamma)
            d = np.array([rng.choice(V, p=q64[i]) for i in range(gamma)], np.int32)
            p, q = p64.astype(dtype), q64.astype(dtype)
            for k in range(4):
                key = jax.random.key(10 * gamma + k)
                u = jax.random.uniform(key, (ver.num_uniforms(gamma),), jnp.dtype(dtype))
                a = ver.verify(key, p, q, d)
                b = ver.verify_with_uniforms(u, p, q, d)
                np.testing.assert_array_equal(a.tokens, b.tokens)
                assert int(a.num_accepted) == int(b.num_accepted)
                K = np.asarray(ver.kernel(p, q, d), dtype=np.float64)
                assert K.shape == (gamma + 1, V)
                np.testing.assert_allclose(K.sum(), 1.0, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_names_the_argument(case):
    _, ver, scheme, fixed_n = case
    V = 4
    n = _ns(ver, scheme, fixed_n, V)[-1]
    p, q = random_pair(V, 3)
    d = np.asarray(scheme.sample(jax.random.key(0), jnp.asarray(q), n))
    m = ver.num_uniforms(n)
    u = np.full(m, 0.5)
    bad_p = p.copy()
    bad_p[1] = np.nan
    bad_q = q.copy()
    bad_q[1] = -0.1
    calls = {
        "verify": lambda p, q, d: ver.verify(jax.random.key(0), p, q, d),
        "verify_with_uniforms": lambda p, q, d: ver.verify_with_uniforms(u, p, q, d),
        "kernel": ver.kernel,
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match="p: contains NaN"):
            call(bad_p, q, d)
        with pytest.raises(ValueError, match="q: contains negative"):
            call(p, bad_q, d)
        with pytest.raises(ValueError, match="p: does not sum to 1"):
            call(p * 1.1, q, d)
        with pytest.raises(ValueError, match="same vocabulary"):
            call(p, np.full(V + 1, 1 / (V + 1)), d)
        with pytest.raises(ValueError, match="drafts: token id out of range"):
            call(p, q, np.where(np.arange(n) == 0, V, d))
        with pytest.raises(ValueError, match="drafts: expected integer"):
            call(p, q, d.astype(np.float64))
    with pytest.raises(ValueError, match="uniforms: expected shape"):
        ver.verify_with_uniforms(np.full(m + 1, 0.5), p, q, d)
    with pytest.raises(ValueError, match=r"uniforms: values must lie in \[0, 1\)"):
        ver.verify_with_uniforms(np.where(np.arange(m) == 0, 1.0, 0.5), p, q, d)
    with pytest.raises(ValueError, match="uniforms: expected floating"):
        ver.verify_with_uniforms(np.zeros(m, np.int32), p, q, d)


@pytest.mark.parametrize("name", list(CHAINS))
def test_chain_bad_input_names_the_argument(name):
    ver = CHAINS[name]
    p, q, d = np.full((3, 4), 0.25), np.full((2, 4), 0.25), np.array([0, 1])
    for call in (lambda p, q, d: ver.verify(jax.random.key(0), p, q, d),
                 lambda p, q, d: ver.verify_with_uniforms(np.full(3, 0.5), p, q, d), ver.kernel):
        with pytest.raises(ValueError, match="gamma\\+1 = 3 rows"):
            call(p[:2], q, d)
        with pytest.raises(ValueError, match="q: contains NaN"):
            call(p, np.full((2, 4), np.nan), d)
        with pytest.raises(ValueError, match="drafts: token id out of range"):
            call(p, q, np.array([0, 4]))
    with pytest.raises(ValueError, match="uniforms: expected shape"):
        ver.verify_with_uniforms(np.full(2, 0.5), p, q, d)


def test_host_only_verifier_refuses_tracers():
    for ver in (Vf.OPTIMAL, Vf.optimal_verifier("greedy")):
        p, q = random_pair(3, 0)
        d = jnp.array([0, 1])
        for fn in (lambda p: ver.kernel(p, q, d), lambda p: ver.verify(jax.random.key(0), p, q, d),
                   lambda p: ver.verify_with_uniforms(jnp.array([0.5]), p, q, d)):
            with pytest.raises(TypeError, match="host"):
                jax.jit(fn)(p)
        with pytest.raises(TypeError, match="host"):
            jax.vmap(lambda k: ver.verify(k, p, q, d))(jax.random.split(jax.random.key(0), 2))


def test_optimal_verifier_takes_a_scheme_or_its_name():
    p, q = random_pair(4, 5)
    for name in ("iid", "without_replacement", "greedy", "hub"):
        a, b = Vf.optimal_verifier(name), Vf.optimal_verifier(D.scheme(name))
        assert a.host_only and b.host_only
        np.testing.assert_allclose(a.acceptance(p, q, 2), b.acceptance(p, q, 2), atol=0)
    with pytest.raises(ValueError, match="unknown draft scheme"):
        Vf.optimal_verifier("beam")


def test_built_functions_carry_the_rule_docs():
    for ver in list(VALUES.values()):
        for fn in (ver.verify, ver.verify_with_uniforms, ver.kernel):
            assert "make_verifier" in fn.__doc__
    for ver in (Vf.SINGLE, Vf.SPECINFER, Vf.RSD, Vf.SPECTR, Vf.GREEDY_OPTIMAL, Vf.SPECHUB):
        assert ".. math::" in ver.verify_with_uniforms.__doc__ and ".. math::" in ver.kernel.__doc__
    assert Vf.SINGLE.verify.__qualname__ == "single.verify"


# --- a rule written here, from THEORY.md Sec. 2 (maximal coupling), built by make_verifier ------

def _coupling_core(u, p, q, d):
    """Accept x = d[0] iff u[0] q(x) < p(x); else inverse CDF of (p - q)+ with u[1]."""
    x = d[0]
    ok = u[0] * q[x] < p[x]
    w = jnp.maximum(p - q, 0)
    w = jnp.where(jnp.sum(w) > 0, w, p)
    c = jnp.cumsum(w)
    last = w.shape[0] - 1 - jnp.argmax(w[::-1] > 0)  # never a token of zero weight
    y = jnp.minimum(jnp.sum(c <= u[1] * c[-1]), last)
    return spectheory.VerifyResult(jnp.where(ok, x, y).astype(jnp.int32), jnp.where(ok, 0, -1).astype(jnp.int32))


def _coupling_kernel(p, q, d):
    """K(y | x) = a 1[y = x] + (1 - a) norm((p - q)+), a = min(1, p(x)/q(x)) (1 if q(x) = 0 < p(x))."""
    x = d[0]
    a = jnp.where(q[x] > 0, jnp.minimum(1, p[x] / jnp.where(q[x] > 0, q[x], 1)), (p[x] > 0).astype(p.dtype))
    w = jnp.maximum(p - q, 0)
    w = jnp.where(jnp.sum(w) > 0, w, p)
    return a * jax.nn.one_hot(x, p.shape[0], dtype=p.dtype) + (1 - a) * w / jnp.sum(w)


def _np_coupling_kernel(p, q, d):
    """The same kernel in NumPy, for a host-only verifier."""
    x = int(d[0])
    a = min(1.0, p[x] / q[x]) if q[x] > 0 else float(p[x] > 0)
    w = np.maximum(p - q, 0)
    w = w if w.sum() > 0 else p
    return a * np.eye(p.shape[0])[x] + (1 - a) * w / w.sum()


def _np_coupling_core(u, p, q, d):
    K = _np_coupling_kernel(p.astype(np.float64), q.astype(np.float64), d)
    y = min(int(np.sum(np.cumsum(K) <= u[0] * K.sum())), int(np.flatnonzero(K > 0)[-1]))
    return spectheory.VerifyResult(np.int32(y), np.int32(0 if y == int(d[0]) else -1))


COUPLING = spectheory.make_verifier(jax.jit(_coupling_core), jax.jit(_coupling_kernel), lambda n: 2, n=1,
                                    acceptance=lambda p, q, n: float(np.minimum(p, q).sum()), name="test-coupling")
HOST_COUPLING = spectheory.make_verifier(_np_coupling_core, _np_coupling_kernel, lambda n: 1, n=1,
                                         name="test-host-coupling", host_only=True)
RULES = [spectheory.Rule("test-coupling", D.IID, COUPLING, fixed_n=1),
         spectheory.Rule("test-host-coupling", D.IID, HOST_COUPLING, fixed_n=1)]


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
@given(prob_pairs(1, 7))
def test_made_verifier_is_lossless_exactly(rule, pq):
    """Enumerated output law equals p; the acceptance is sum min(p, q) (the closed form of the
    maximal coupling, computed here in NumPy)."""
    p, q = pq
    a = exact(rule, p, q, 1)
    np.testing.assert_allclose(a.output, p, rtol=0, atol=1e-12)
    assert a.max_error <= 1e-12
    np.testing.assert_allclose(a.acceptance, np.minimum(p, q).sum(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_made_verifier_on_edge_cases_and_by_hand(rule):
    ver = rule.verifier
    assert ver.host_only == (rule.name == "test-host-coupling")
    for V in (1, 2, 5):
        for case, (p, q) in edge_pairs(V, seed=V).items():
            a = exact(rule, p, q, 1)
            assert a.max_error <= 1e-12, case
            np.testing.assert_allclose(a.acceptance, np.minimum(p, q).sum(), atol=1e-12, err_msg=case)
    # p = (0.2, 0.8), q = (0.5, 0.5), draft 0: accepted w.p. 0.4, else the residual (0, 0.3) -> token 1
    np.testing.assert_allclose(np.asarray(ver.kernel(np.array([0.2, 0.8]), np.array([0.5, 0.5]), np.array([0]))),
                               [0.4, 0.6], atol=1e-15)
    p, q = np.array([0.6, 0.3, 0.1]), np.array([0.2, 0.3, 0.5])
    for k in range(5):
        key = jax.random.key(k)
        u = jax.random.uniform(key, (ver.num_uniforms(1),), jnp.float64)  # the inputs' dtype
        a, b = ver.verify(key, p, q, np.array([2])), ver.verify_with_uniforms(u, p, q, np.array([2]))
        assert (int(a.token), int(a.index)) == (int(b.token), int(b.index))
    with pytest.raises(ValueError, match="drafts: expected length 1"):
        ver.kernel(p, q, np.array([0, 1]))
    with pytest.raises(ValueError, match="p: does not sum to 1"):
        ver.verify(jax.random.key(0), p * 2, q, np.array([0]))


def test_made_verifier_sampler_realises_its_kernel():
    """On a fine grid of the two uniforms the decisions have exactly the kernel's frequencies
    (to the grid's resolution), jitted and vmapped."""
    p, q = np.array([0.6, 0.3, 0.1, 0.0]), np.array([0.2, 0.3, 0.4, 0.1])
    N = 400
    g = (np.arange(N) + 0.5) / N
    U = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    for x in range(4):
        d = jnp.array([x])
        tok = np.asarray(jax.jit(jax.vmap(lambda u: COUPLING.verify_with_uniforms(u, p, q, d).token))(jnp.asarray(U)))
        freq = np.bincount(tok, minlength=4) / len(U)
        np.testing.assert_allclose(freq, np.asarray(COUPLING.kernel(p, q, d)), atol=2.0 / N)
