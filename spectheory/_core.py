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


def sample_index(u: jax.Array, w: jax.Array) -> jax.Array:
    r"""Inverse-CDF draw of an index from non-negative weights ``w[V]`` with one uniform.

    Returns the smallest ``i`` with ``cumsum(w)[i] > u * sum(w)``: index ``i`` has probability
    ``w[i] / sum(w)``, and an index of zero weight is never returned while some weight is
    positive (also when rounding pushes ``u * sum(w)`` to the total).
    """
    c = jnp.cumsum(w, axis=-1)
    t = u * c[..., -1:]
    idx = jnp.sum(c <= t, axis=-1)
    V = w.shape[-1]
    last_pos = V - 1 - jnp.argmax((w > 0)[..., ::-1], axis=-1)
    return jnp.minimum(idx, last_pos).astype(jnp.int32)


def one_hot(i: jax.Array, V: int, dtype) -> jax.Array:
    """One-hot row of length ``V`` (``dtype``) for the integer ``i``."""
    return (jnp.arange(V) == i).astype(dtype)


def float_dtype(*xs) -> jnp.dtype:
    """The floating result dtype of the given arrays (at least float32)."""
    return jnp.result_type(*xs, jnp.float32)
