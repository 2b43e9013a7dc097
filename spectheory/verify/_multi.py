"""Pieces shared by the multi-draft verifiers (private).

A *sequential* multi-draft rule tests the drafts in order, draft ``j`` passing with
probability ``a_j``, and emits the first draft that passes, or a draw from a residual law
when all fail. Its kernel and its sampler are assembled here from ``a`` and the residual.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult


def first_accepted(ok: jax.Array, drafts: jax.Array, y: jax.Array) -> VerifyResult:
    """The first draft whose coin ``ok[j]`` passed, else the residual token ``y`` (index -1);
    the flag ``(-1, -1)`` whenever ``y`` is -1 (see :func:`spectheory._core.accept_or_draw`).
    The coins must fail for drafts outside ``[0, V)`` (read them with
    :func:`spectheory._core.take`)."""
    any_ok = jnp.any(ok)
    first = jnp.argmax(ok).astype(jnp.int32)
    token = _core.accept_or_draw(any_ok, drafts[first], y)
    index = jnp.where(any_ok & (token >= 0), first, -1).astype(jnp.int32)
    return VerifyResult(token, index)


def matching(drafts: jax.Array, token: jax.Array) -> VerifyResult:
    """``VerifyResult`` whose index is the first draft equal to ``token`` (-1 if none, and for
    the flag ``token = -1``)."""
    hit = (drafts == token) & (token >= 0)
    index = jnp.where(jnp.any(hit), jnp.argmax(hit), -1).astype(jnp.int32)
    return VerifyResult(jnp.asarray(token).astype(jnp.int32), index)


def sequential_kernel(drafts: jax.Array, a: jax.Array, residual: jax.Array) -> jax.Array:
    r"""Kernel of a sequential rule.

    .. math::
        K(y \mid \bar x) = \sum_j \Big[\prod_{i<j} (1 - a_i)\Big] a_j\, \delta_{x_j}(y)
        + \Big[\prod_i (1 - a_i)\Big] r(y).

    Args:
      drafts: int[n]; a: float[n] pass probabilities; residual: float[V], a probability vector.
    """
    survive = jnp.concatenate([jnp.ones((1,), a.dtype), jnp.cumprod(1 - a)])
    ids = _core.scatter_ids(drafts, residual.shape[-1])  # ids outside [0, V) add nothing
    K = jnp.zeros_like(residual).at[ids].add(survive[:-1] * a, mode="drop")
    return K + survive[-1] * residual


def batched_acceptance(fn, p, q):
    """Apply a one-position acceptance ``fn(p[V], q[V]) -> float`` to ``p, q`` of shape
    ``[..., V]`` (validated), mapping over the leading axes."""
    p = _v.as_probs(p, "p", ndim=None)
    q = _v.as_probs(q, "q", ndim=None)
    _v.same_vocab(p, q)
    dtype = jnp.result_type(p.dtype, q.dtype)
    p, q = jnp.broadcast_arrays(p.astype(dtype), q.astype(dtype))
    lead = p.shape[:-1]
    V = p.shape[-1]
    if not lead:
        return fn(p, q)
    out = jax.vmap(fn)(p.reshape(-1, V), q.reshape(-1, V))
    return out.reshape(lead)
