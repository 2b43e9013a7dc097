"""Test-local multi-draft rules for tree verification, written from THEORY.md Sec. 3 so that
trees can be audited before the registry's multi-draft rules land. Not registered.

* RRS with replacement (SpecInfer, Miao et al.): i.i.d. drafts.
* RRS without replacement (RSD, Jeon et al.): ordered draws without replacement.
"""

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory._registry import DraftScheme, Rule, Verifier, VerifyResult
from spectheory.drafts import IID
from spectheory.sampling import gumbel_top_k, plackett_luce_law


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


WOR = DraftScheme(
    name="without_replacement",
    sample=lambda key, q, n: gumbel_top_k(key, jnp.log(jnp.asarray(q)), n),
    law=plackett_luce_law,
    replacement=False,
    max_n=lambda V: V,
)

RRS = Rule("test-rrs", IID, _verifier(True), description="RRS with replacement (test-local)")
RSD = Rule("test-rsd", WOR, _verifier(False), description="RRS without replacement (test-local)")
