"""Shared, branch-free numerical pieces used by every verifier (private).

Everything here is pure JAX, traceable under ``jit``/``vmap``, and never produces NaN on the
legal edge cases (``p == q``, one-hot laws, zeros in ``q``). The pieces also keep the package's
jit contract on invalid input, where no value check can raise: a draft id outside ``[0, V)``
reads as a token of zero mass (:func:`take`, :func:`scatter_ids`), and the sampler returns the
flag :data:`INVALID` instead of a token when its weights have no positive finite total
(:func:`sample_weighted`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


#: Token id returned under ``jit`` when the law to sample from is invalid (no positive finite
#: total weight: NaN, inf, all zero) or the uniform is not in [0, 1); also the padding of
#: :class:`~spectheory.verify.ChainResult`. Never a token of the vocabulary.
INVALID = -1


def in_vocab(d: jax.Array, V: int) -> jax.Array:
    """Whether the token ids ``d`` lie in ``[0, V)`` (elementwise)."""
    return (d >= 0) & (d < V)


def take(x: jax.Array, d: jax.Array) -> jax.Array:
    """``x[..., d]`` along the last axis, 0 where ``d`` is outside ``[0, V)``.

    JAX clamps (``d >= V``) or wraps (``d < 0``) out-of-range gathers; reading an out-of-range
    draft as a token of zero mass instead makes every verifier reject it.
    """
    V = x.shape[-1]
    ok = in_vocab(d, V)
    return jnp.where(ok, jnp.take(x, jnp.clip(d, 0, V - 1), axis=-1), 0).astype(x.dtype)


def take_rows(x: jax.Array, d: jax.Array) -> jax.Array:
    """``x[i, d[i]]`` for ``x: float[g, V]`` and ``d: int[g]``, 0 where ``d[i]`` is outside
    ``[0, V)`` (see :func:`take`)."""
    V = x.shape[-1]
    ok = in_vocab(d, V)
    return jnp.where(ok, x[jnp.arange(x.shape[0]), jnp.clip(d, 0, V - 1)], 0).astype(x.dtype)


def scatter_ids(d: jax.Array, V: int) -> jax.Array:
    """``d`` with ids outside ``[0, V)`` replaced by ``V``: an ``.at[...]`` update with
    ``mode="drop"`` then skips them (a negative id would otherwise wrap around)."""
    return jnp.where(in_vocab(d, V), d, V)


def accept_or_draw(ok: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """The emitted token: the draft ``x`` where its coin ``ok`` passed, else the residual draw
    ``y``; :data:`INVALID` whenever ``y`` is, also when ``x`` passed (the residual law reads
    all of ``p`` and ``q``, so its flag is the verifier's flag for invalid laws)."""
    return jnp.where(y < 0, INVALID, jnp.where(ok, x, y)).astype(jnp.int32)


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
    ``p == q`` on the simplex); it keeps the sampler and the kernel free of ``0/0``. A NaN in
    ``p`` or ``q`` is kept (no fallback), so it reaches the sampler's flag.
    """
    w = jnp.maximum(p - q, 0)
    return jnp.where(jnp.sum(w, axis=-1, keepdims=True) == 0, p, w)


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
    the total. When the total weight is not positive and finite (all zero, NaN, inf: never on
    legal input), or ``u`` is not in [0, 1), the result is :data:`INVALID` (-1).

    Args:
      u: a uniform in [0, 1), shape ``()``.
      w: non-negative weights, float[V] (not necessarily normalised).

    Returns:
      int32 index in ``[0, V)``, or -1.

    >>> import jax.numpy as jnp
    >>> int(sample_index(jnp.array(0.5), jnp.array([0.0, 1.0, 1.0]))), int(sample_index(jnp.array(0.5), jnp.zeros(3)))
    (2, -1)
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
      points: optional ``(int[k], float[k])`` extra point masses at distinct indices (an
        index outside ``[0, V)`` is ignored).

    Returns:
      int32 index in ``[0, V)``, or :data:`INVALID` (-1) when the total weight is not positive
      and finite or ``u`` is not in [0, 1) (see :func:`sample_index`).
    """
    V = xs[0].shape[-1]
    block = min(SAMPLE_BLOCK, V)
    nb = -(-V // block)
    xb = [jnp.pad(x, (0, nb * block - V)).reshape(nb, block) for x in xs]
    bs = jnp.sum(weight_fn(*xb), axis=1)
    if points is not None:
        idx, pw = points
        pw = jnp.where(in_vocab(idx, V), pw, 0)  # an index outside [0, V) carries no mass
        idx = jnp.clip(idx, 0, V - 1)
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
    valid = (cb[-1] > 0) & jnp.isfinite(cb[-1]) & (u >= 0) & (u < 1)
    return jnp.where(valid, j * block + i, INVALID).astype(jnp.int32)


def one_hot(i: jax.Array, V: int, dtype) -> jax.Array:
    """One-hot row of length ``V`` (``dtype``) for the integer ``i``."""
    return (jnp.arange(V) == i).astype(dtype)


def float_dtype(*xs) -> jnp.dtype:
    """The floating result dtype of the given arrays (at least float32)."""
    return jnp.result_type(*xs, jnp.float32)
