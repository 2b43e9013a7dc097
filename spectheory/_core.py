"""Shared, branch-free numerical pieces used by every verifier (private).

Everything here is pure JAX, traceable under ``jit``/``vmap``, and never produces NaN on the
legal edge cases (``p == q``, one-hot laws, zeros in ``q``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def accept_prob(p_x: jax.Array, q_x: jax.Array) -> jax.Array:
    r"""Single-draft acceptance probability :math:`\min(1, p(x)/q(x))`.

    Where ``q_x == 0`` it is 1 if ``p_x > 0`` and 0 otherwise (the limit of the rule, and the
    value the uniform test :func:`accepts` realises). Broadcasts elementwise.
    """
    safe_q = jnp.where(q_x > 0, q_x, 1)
    ratio = jnp.minimum(1, p_x / safe_q)
    return jnp.where(q_x > 0, ratio, (p_x > 0).astype(ratio.dtype))


def accepts(u: jax.Array, p_x: jax.Array, q_x: jax.Array) -> jax.Array:
    r"""The coin of the single-draft test: ``u * q(x) < p(x)`` for ``u ~ U[0, 1)``.

    Equivalent to ``u < min(1, p(x)/q(x))`` without a division; strict, so a uniform that is
    exactly 0 never accepts a token with ``p(x) = 0``.
    """
    return u * q_x < p_x


def residual_weights(p: jax.Array, q: jax.Array) -> jax.Array:
    r"""Unnormalised residual :math:`(p - q)_+`, or ``p`` itself when that has zero mass.

    The fallback only matters when rejection has probability zero (``p <= q`` everywhere, i.e.
    ``p == q`` on the simplex); it keeps the sampler and the kernel free of ``0/0``.
    """
    w = jnp.maximum(p - q, 0)
    return jnp.where(jnp.sum(w, axis=-1, keepdims=True) > 0, w, p)


def normalize(w: jax.Array) -> jax.Array:
    """``w / sum(w)`` along the last axis; an all-zero row stays all zero (no NaN)."""
    s = jnp.sum(w, axis=-1, keepdims=True)
    return w / jnp.where(s > 0, s, 1)


#: Block length of the two-level inverse-CDF search in :func:`sample_index`.
SAMPLE_BLOCK = 256


def _last_positive(w: jax.Array) -> jax.Array:
    """Index of the last positive entry of ``w[..., V]`` (0 if none)."""
    V = w.shape[-1]
    return V - 1 - jnp.argmax((w > 0)[..., ::-1], axis=-1)


def sample_index(u: jax.Array, w: jax.Array) -> jax.Array:
    r"""Inverse-CDF draw of an index from non-negative weights ``w[V]`` with one uniform.

    Returns (up to rounding) the smallest ``i`` with ``cumsum(w)[i] > u * sum(w)``, so index
    ``i`` has probability ``w[i] / sum(w)``. The search is two-level: the vocabulary is cut
    into blocks of :data:`SAMPLE_BLOCK` tokens, the block is found from the cumulative block
    sums, and only that block's cumulative sum is formed. This reads ``w`` once (a full
    ``cumsum`` over a large vocabulary is several times slower on CPU). An index of zero weight
    is never returned while some weight is positive, also when rounding pushes the target past
    the total.

    Args:
      u: a uniform in [0, 1), shape ``()``.
      w: non-negative weights, float[V] (not necessarily normalised).

    Returns:
      int32 index.
    """
    V = w.shape[-1]
    block = min(SAMPLE_BLOCK, V)
    nb = -(-V // block)
    wp = jnp.pad(w, (0, nb * block - V)).reshape(nb, block)
    bs = jnp.sum(wp, axis=1)
    cb = jnp.cumsum(bs)
    t = u * cb[-1]
    j = jnp.minimum(jnp.sum(cb <= t), _last_positive(bs))
    row = wp[j]
    t_local = jnp.maximum(t - jnp.where(j > 0, cb[jnp.maximum(j - 1, 0)], 0), 0)
    i = jnp.minimum(jnp.sum(jnp.cumsum(row) <= t_local), _last_positive(row))
    return (j * block + i).astype(jnp.int32)


def one_hot(i: jax.Array, V: int, dtype) -> jax.Array:
    """One-hot row of length ``V`` (``dtype``) for the integer ``i``."""
    return (jnp.arange(V) == i).astype(dtype)


def float_dtype(*xs) -> jnp.dtype:
    """The floating result dtype of the given arrays (at least float32)."""
    return jnp.result_type(*xs, jnp.float32)
