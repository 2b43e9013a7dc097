"""The conformance suite: every registered rule must pass all of it.

A new rule joins by registering (``spectheory.register``); nothing here names a rule.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory.audit import chi_square, exact

from _cases import edge_pairs, random_pair, vocab_for

N_VALUES = range(1, 9)


def _rule_ns():
    out = []
    for name in spectheory.rules():
        r = spectheory.rule(name)
        for n in N_VALUES:
            if r.supports(n, vocab_for(n)):
                out.append((name, n))
    return out


RULE_NS = _rule_ns()
RULE_NS_IDS = [f"{a}-n{b}" for a, b in RULE_NS]
RULES = spectheory.rules()
JAX_RULES = [r for r in RULES if not spectheory.rule(r).verifier.host_only]


@pytest.mark.parametrize("name,n", RULE_NS, ids=RULE_NS_IDS)
def test_exact_audit_lossless(name, n):
    """Enumerated output law equals p to 1e-12 in float64, on every edge case; a closed-form
    acceptance, when the verifier has one, equals the enumerated acceptance."""
    r = spectheory.rule(name)
    V = vocab_for(n)
    for case, (p, q) in edge_pairs(V, seed=n).items():
        if not r.supports(n, V) or (not r.drafts.replacement and n > np.sum(q > 0)):
            continue
        a = exact(r, p, q, n)
        assert a.max_error <= 1e-12, (case, a.max_error)
        assert -1e-12 <= a.acceptance <= 1 + 1e-12, (case, a.acceptance)
        if case == "p_eq_q":
            np.testing.assert_allclose(a.acceptance, 1.0, atol=1e-12, err_msg=case)
        if case == "one_hot_p":
            np.testing.assert_allclose(a.output, p, atol=1e-12)
        if r.verifier.acceptance is not None:  # a closed form, when given, equals the enumeration
            np.testing.assert_allclose(float(r.verifier.acceptance(p, q, n)), a.acceptance, atol=1e-12,
                                       err_msg=case)


@pytest.mark.parametrize("name", RULES)
def test_exact_audit_vocab_one(name):
    r = spectheory.rule(name)
    for n in N_VALUES:
        if r.supports(n, 1):
            a = exact(r, np.array([1.0]), np.array([1.0]), n)
            np.testing.assert_allclose(a.output, [1.0], atol=1e-12)
            np.testing.assert_allclose(a.acceptance, 1.0, atol=1e-12)


def _some_n(name):
    r = spectheory.rule(name)
    return [n for n in (1, 2, 3, 5) if r.supports(n, 5)]


@pytest.mark.parametrize("name", RULES)
def test_chi_square_sampler(name):
    """The sampler's emitted law matches p (alpha = 1e-3, fixed keys), and with drafts held
    fixed it matches the kernel the exact audit enumerates."""
    r = spectheory.rule(name)
    num = 4000 if r.verifier.host_only else 20_000
    for n in _some_n(name):
        p, q = random_pair(5, seed=10 + n, zeros=True)
        if not r.drafts.replacement and n > np.sum(q > 0):
            continue
        res = chi_square(r, p, q, n, key=jax.random.key(100 + n), num_samples=num, alpha=1e-3)
        assert res.passed, (n, res.p_value, res.counts)
        d = np.asarray(r.drafts.sample(jax.random.key(7), jnp.asarray(q), n))
        res = chi_square(r, p, q, n, key=jax.random.key(200 + n), num_samples=num, alpha=1e-3, drafts=d)
        assert res.passed, (n, d, res.p_value, res.counts, res.expected)


def _batch(n, B=16, V=6, dtype=np.float64, seed=0):
    ps, qs = zip(*[random_pair(V, seed + i, zeros=i % 3 == 0) for i in range(B)])
    return np.stack(ps).astype(dtype), np.stack(qs).astype(dtype)


@pytest.mark.parametrize("name", JAX_RULES)
def test_jit_equals_eager_and_vmap_equals_loop(name):
    r = spectheory.rule(name)
    for n in _some_n(name):
        ps, qs = _batch(n)
        keys = jax.random.split(jax.random.key(n), ps.shape[0])
        dkeys = jax.random.split(jax.random.key(50 + n), ps.shape[0])
        drafts = jnp.stack([r.drafts.sample(k, jnp.asarray(q), n) for k, q in zip(dkeys, qs)])
        loop = [r.verifier.verify(k, p, q, d) for k, p, q, d in zip(keys, ps, qs, drafts)]
        loop_tok = np.array([int(x.token) for x in loop])
        loop_idx = np.array([int(x.index) for x in loop])
        jitted = [jax.jit(r.verifier.verify)(k, p, q, d) for k, p, q, d in zip(keys[:3], ps[:3], qs[:3], drafts[:3])]
        np.testing.assert_array_equal([int(x.token) for x in jitted], loop_tok[:3])
        batched = jax.jit(jax.vmap(r.verifier.verify))(keys, jnp.asarray(ps), jnp.asarray(qs), drafts)
        np.testing.assert_array_equal(np.asarray(batched.token), loop_tok)
        np.testing.assert_array_equal(np.asarray(batched.index), loop_idx)
        # the index points at a draft equal to the token, or is -1
        for t, i, d in zip(loop_tok, loop_idx, np.asarray(drafts)):
            assert i == -1 or d[i] == t
        # vmapped kernel equals the loop of kernels
        K = jax.vmap(r.verifier.kernel)(jnp.asarray(ps), jnp.asarray(qs), drafts)
        for b in range(ps.shape[0]):
            np.testing.assert_allclose(K[b], r.verifier.kernel(ps[b], qs[b], drafts[b]), atol=1e-14)


@pytest.mark.parametrize("name", JAX_RULES)
def test_key_form_equals_uniform_form(name):
    r = spectheory.rule(name)
    for n in _some_n(name):
        p, q = random_pair(6, seed=n)
        d = r.drafts.sample(jax.random.key(1), jnp.asarray(q), n)
        for s in range(5):
            key = jax.random.key(s)
            u = jax.random.uniform(key, (r.verifier.num_uniforms(n),), jnp.float64)
            a = r.verifier.verify(key, p, q, d)
            b = r.verifier.verify_with_uniforms(u, p, q, d)
            assert int(a.token) == int(b.token) and int(a.index) == int(b.index)


@pytest.mark.parametrize("name", RULES)
def test_float32_inputs(name):
    """float32 inputs: no NaN, kernel a distribution matching float64 to 1e-5, sampler agrees
    with the float64 sampler on the same uniforms except near decision boundaries."""
    r = spectheory.rule(name)
    for n in _some_n(name):
        for case, (p, q) in edge_pairs(5, seed=n).items():
            if not r.drafts.replacement and n > np.sum(q > 0):
                continue
            p32, q32 = p.astype(np.float32), q.astype(np.float32)
            d = r.drafts.sample(jax.random.key(3), jnp.asarray(q32), n)
            K32 = np.asarray(r.verifier.kernel(p32, q32, d))
            K64 = np.asarray(r.verifier.kernel(p, q, d))
            assert K32.dtype == np.float32
            assert np.all(np.isfinite(K32)), case
            np.testing.assert_allclose(K32.sum(), 1.0, atol=1e-5)
            np.testing.assert_allclose(K32, K64, atol=1e-5, err_msg=case)
            agree = 0
            for s in range(20):
                u = np.asarray(jax.random.uniform(jax.random.key(s), (r.verifier.num_uniforms(n),), jnp.float32))
                t32 = int(r.verifier.verify_with_uniforms(u, p32, q32, d).token)
                t64 = int(r.verifier.verify_with_uniforms(u.astype(np.float64), p, q, d).token)
                assert K64[t32] > 0, (case, t32)
                agree += t32 == t64
            assert agree >= 18, (case, agree)


@pytest.mark.parametrize("name", JAX_RULES)
def test_zero_uniform_never_emits_zero_mass_token(name):
    """u = 0 everywhere (the edge of [0, 1)) must not accept a draft with p(x) = 0."""
    r = spectheory.rule(name)
    for n in _some_n(name):
        p = np.array([0.0, 0.5, 0.5, 0.0, 0.0])
        q = np.array([0.4, 0.1, 0.1, 0.2, 0.2])
        d = r.drafts.sample(jax.random.key(0), jnp.asarray(q), n)
        res = r.verifier.verify_with_uniforms(jnp.zeros(r.verifier.num_uniforms(n)), p, q, d)
        assert p[int(res.token)] > 0
        res = r.verifier.verify_with_uniforms(jnp.full(r.verifier.num_uniforms(n), 1 - 2**-53), p, q, d)
        assert p[int(res.token)] > 0
