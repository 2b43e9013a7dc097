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


def excess(a: jax.Array, b: jax.Array) -> jax.Array:
    r""":math:`(a - b)_+`, computed as ``a - min(a, b)``: the same float as ``max(a - b, 0)``
    for finite inputs (``min`` returns ``b`` exactly when ``b <= a``, else the difference is
    ``a - a = 0``), with no constant in it. On XLA-CPU a literal ``0`` shared by several fused
    reductions over ``[B, V]`` is materialised as a full broadcast array that every one of
    them reads (several times slower per pass); this form avoids it.
    """
    return a - jnp.minimum(a, b)


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
    return sample_weighted(u, lambda w: w, (w,))


def sample_weighted(u, weight_fn, xs, points=None) -> jax.Array:
    r""":func:`sample_index` over weights given as an elementwise function of arrays.

    The weights are ``w = weight_fn(*xs)`` (each of ``xs`` float[V]), plus, when ``points =
    (idx, pw)`` is given, point masses ``pw[k]`` added at the distinct indices ``idx[k]``. ``w``
    is never formed as a whole: the block sums are one fused pass over ``xs`` and only the
    chosen block's weights are recomputed, so a residual such as ``(p - t q)_+`` costs one read
    of ``p`` and ``q``. Same search, same result as ``sample_index(u, w)`` up to the rounding
    of the block sums. ``weight_fn`` must map zeros to zero (the padding of the last block)
    and return non-negative weights.

    Args:
      u: a uniform in [0, 1), shape ``()``.
      weight_fn: elementwise function of the arrays in ``xs``.
      xs: tuple of float[V] arrays.
      points: optional ``(int[k], float[k])`` extra point masses at distinct indices.

    Returns:
      int32 index.
    """
    V = xs[0].shape[-1]
    block = min(SAMPLE_BLOCK, V)
    nb = -(-V // block)
    xb = [jnp.pad(x, (0, nb * block - V)).reshape(nb, block) for x in xs]
    bs = jnp.sum(weight_fn(*xb), axis=1)
    if points is not None:
        idx, pw = points
        bs = bs.at[idx // block].add(pw.astype(bs.dtype))
    cb = jnp.cumsum(bs)
    t = u * cb[-1]
    j = jnp.minimum(jnp.sum(cb <= t), _last_positive(bs))
    row = weight_fn(*[x[j] for x in xb])
    if points is not None:
        hit = (idx[:, None] == j * block + jnp.arange(block)).astype(row.dtype)
        row = row + jnp.sum(pw.astype(row.dtype)[:, None] * hit, axis=0)
    t_local = jnp.maximum(t - jnp.where(j > 0, cb[jnp.maximum(j - 1, 0)], 0), 0)
    i = jnp.minimum(jnp.sum(jnp.cumsum(row) <= t_local), _last_positive(row))
    return (j * block + i).astype(jnp.int32)


def one_hot(i: jax.Array, V: int, dtype) -> jax.Array:
    """One-hot row of length ``V`` (``dtype``) for the integer ``i``."""
    return (jnp.arange(V) == i).astype(dtype)


def float_dtype(*xs) -> jnp.dtype:
    """The floating result dtype of the given arrays (at least float32)."""
    return jnp.result_type(*xs, jnp.float32)
