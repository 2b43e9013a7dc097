"""Greedy drafts (Hu et al. 2025): the n - 1 most likely tokens of q, plus one random draft."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme


def greedy_top(q, n: int) -> jax.Array:
    """The deterministic part of greedy drafts: the ``n - 1`` largest entries of ``q``.

    Ties are broken towards the lower token id; the order is decreasing ``q``.

    Args:
      q: draft law, float[V].
      n: number of drafts (static); returns ``n - 1`` ids.

    Returns:
      int32[n - 1].
    """
    if n <= 1:
        return jnp.zeros((0,), jnp.int32)
    return jax.lax.top_k(q, n - 1)[1].astype(jnp.int32)


def greedy_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw greedy drafts: the top ``n - 1`` tokens of ``q``, then one draw from the rest.

    With :math:`T` the ``n - 1`` most likely tokens of ``q`` (decreasing ``q``, ties to the
    lower id), the tuple is :math:`(T_1, \dots, T_{n-1}, X)` with

    .. math:: X \sim q'(x) = \frac{q(x)\,[x \notin T]}{1 - q(T)}.

    Args:
      key: a ``jax.random`` key.
      q: draft law, float[V]; needs at least ``n`` tokens of positive mass.
      n: number of drafts (static).

    Returns:
      int32[n] distinct token ids.

    Raises:
      ValueError: (eagerly) if ``n`` exceeds the number of tokens with ``q > 0``.

    >>> import jax, jax.numpy as jnp
    >>> greedy_sample(jax.random.key(0), jnp.array([0.1, 0.6, 0.3]), 3)[:2].tolist()
    [1, 2]

    References:
      Hu, Zheng, Luo, Zhang, Huang. Towards Optimal Multi-draft Speculative Decoding,
      ICLR 2025 (arXiv 2502.18779).
    """
    q = _v.as_probs(q, "q")
    n = _v.check_n(n, V=int(q.shape[-1]), replacement=False, support=_v.support_size(q))
    return _sample_core(key, q, n)


@functools.partial(jax.jit, static_argnames="n")
def _sample_core(key, q, n):
    top = greedy_top(q, n)
    rest = jnp.ones(q.shape, bool).at[top].set(False)
    logq = jnp.where(rest & (q > 0), jnp.log(jnp.where(q > 0, q, 1)), -jnp.inf)
    x = jax.random.categorical(key, logq.astype(jnp.result_type(q.dtype, jnp.float32)))
    return jnp.concatenate([top, x[None].astype(jnp.int32)])


def _greedy_top_np(q: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-q, kind="stable")[: n - 1]


def greedy_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of greedy drafts (host side, float64).

    .. math::
        Q(T_1, \dots, T_{n-1}, x) = \frac{q(x)}{1 - q(T)}, \qquad x \notin T,\ q(x) > 0.

    Args:
      q: draft law, float[V].
      n: number of drafts, at most the number of tokens with ``q > 0``.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` with ``M = #{x : q(x) > 0} - n + 1``.

    Raises:
      ValueError: if ``n`` exceeds the support of ``q``.
    """
    q = np.asarray(q, dtype=np.float64)
    n = _v.check_n(n, V=q.shape[-1], replacement=False, support=int(np.sum(q > 0)))
    top = _greedy_top_np(q, n)
    rest = np.ones(q.shape[-1], bool)
    rest[top] = False
    last = np.flatnonzero(rest & (q > 0))
    tuples = np.concatenate([np.tile(top, (len(last), 1)), last[:, None]], axis=1).astype(np.int64)
    probs = q[last] / q[rest].sum()
    return tuples, probs


GREEDY = DraftScheme(
    name="greedy",
    sample=greedy_sample,
    law=greedy_law,
    min_n=1,
    max_n=lambda V: V,
    replacement=False,
)
"""Greedy drafts (Hu et al. 2025): the top ``n - 1`` of ``q`` and one draw from the rest."""
