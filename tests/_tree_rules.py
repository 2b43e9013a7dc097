"""Test-local multi-draft rules for tree verification, written from THEORY.md Sec. 3 so that
trees are audited against verifier maths independent of the registry's rules. Not registered.

Their draft schemes are the package's scheme objects (``spectheory.drafts.IID``,
``WITHOUT_REPLACEMENT``, ``GREEDY``): a tree pairs with a node rule by scheme identity, so a
test-local rule must carry the scheme the trees draw their children by. Only the *verifiers*
below are test-local.

* RRS with replacement (SpecInfer, Miao et al.): i.i.d. drafts.
* RRS without replacement (RSD, Jeon et al.): ordered draws without replacement.
* Greedy drafts (Hu et al. 2025).
"""

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory._registry import Rule, Verifier, VerifyResult
from spectheory.drafts import GREEDY as GREEDY_SCHEME
from spectheory.drafts import IID, WITHOUT_REPLACEMENT


def _rrs(u, p, q, drafts, replacement):
    p = jnp.asarray(p)
    q = jnp.asarray(q).astype(p.dtype)
    n = drafts.shape[0]
    done = jnp.zeros((), bool)
    token = jnp.zeros((), jnp.int32)
    index = jnp.full((), -1, jnp.int32)
    pj, qj = p, q
    for j in range(n):
        x = drafts[j]
        ok = ~done & _core.accepts(u[j], pj[x], qj[x])
        token = jnp.where(ok, x, token)
        index = jnp.where(ok, j, index)
        done = done | ok
        pj = _core.normalize(_core.residual_weights(pj, qj))
        if not replacement:
            qj = _core.normalize(qj.at[x].set(0))
    y = _core.sample_index(u[n], pj)
    return VerifyResult(jnp.where(done, token, y).astype(jnp.int32), index)


def _rrs_kernel(p, q, drafts, replacement):
    p = jnp.asarray(p)
    q = jnp.asarray(q).astype(p.dtype)
    V = p.shape[-1]
    K = jnp.zeros_like(p)
    alive = jnp.ones((), p.dtype)
    pj, qj = p, q
    for j in range(drafts.shape[0]):
        x = drafts[j]
        a = _core.accept_prob(pj[x], qj[x])
        K = K + alive * a * _core.one_hot(x, V, p.dtype)
        alive = alive * (1 - a)
        pj = _core.normalize(_core.residual_weights(pj, qj))
        if not replacement:
            qj = _core.normalize(qj.at[x].set(0))
    return K + alive * pj


def _verifier(replacement):
    vwu = lambda u, p, q, d: _rrs(jnp.asarray(u).astype(jnp.result_type(p, q, jnp.float32)), p, q, d, replacement)
    return Verifier(
        verify=lambda key, p, q, d: vwu(jax.random.uniform(key, (d.shape[0] + 1,), _core.float_dtype(p, q)), p, q, d),
        kernel=lambda p, q, d: _rrs_kernel(p, q, d, replacement),
        verify_with_uniforms=vwu,
        num_uniforms=lambda n: n + 1,
    )


RRS = Rule("test-rrs", IID, _verifier(True), description="RRS with replacement (test-local)")
RSD = Rule("test-rsd", WITHOUT_REPLACEMENT, _verifier(False), description="RRS without replacement (test-local)")


# * Greedy drafts (Hu et al. 2025, THEORY Sec. 3): T = the first n - 1 drafts (the most likely
#   tokens), X ~ q' = q off T; accept X w.p. min(1, p(X)/q'(X)), else emit from
#   r = p on T, (p - q')+ off T.

def _greedy_parts(p, q, drafts):
    p = jnp.asarray(p)
    q = jnp.asarray(q).astype(p.dtype)
    n = drafts.shape[0]
    inT = jnp.zeros(p.shape, bool).at[drafts[:n - 1]].set(True) if n > 1 else jnp.zeros(p.shape, bool)
    qp = _core.normalize(jnp.where(inT, 0, q))
    r = jnp.where(inT, p, jnp.maximum(p - qp, 0))
    r = jnp.where(jnp.sum(r) > 0, r, p)
    return p, qp, r, drafts[n - 1]


def _greedy_with_uniforms(u, p, q, drafts):
    p, qp, r, x = _greedy_parts(p, q, drafts)
    u = jnp.asarray(u).astype(p.dtype)
    ok = _core.accepts(u[0], p[x], qp[x])
    y = _core.sample_index(u[1], r)
    return VerifyResult(jnp.where(ok, x, y).astype(jnp.int32), jnp.where(ok, drafts.shape[0] - 1, -1).astype(jnp.int32))


def _greedy_kernel(p, q, drafts):
    p, qp, r, x = _greedy_parts(p, q, drafts)
    a = _core.accept_prob(p[x], qp[x])
    return a * _core.one_hot(x, p.shape[-1], p.dtype) + (1 - a) * _core.normalize(r)


GREEDY = Rule("test-greedy", GREEDY_SCHEME, Verifier(
    verify=lambda key, p, q, d: _greedy_with_uniforms(jax.random.uniform(key, (2,), _core.float_dtype(p, q)), p, q, d),
    kernel=_greedy_kernel,
    verify_with_uniforms=_greedy_with_uniforms,
    num_uniforms=lambda n: 2,
), description="greedy drafts (Hu et al. 2025, test-local)")
