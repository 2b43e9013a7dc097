"""Greedy drafts (Hu et al. 2025): the n - 1 most likely tokens of q, plus one random draft."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme
from spectheory.drafts import _checks as _c


def greedy_top(q, n: int) -> jax.Array:
    r"""The deterministic part of greedy drafts: the ``n - 1`` largest entries of ``q``.

    .. math:: T = \operatorname{arg\,top}_{n-1}\, q

    Ties are broken towards the lower token id; the order is decreasing ``q``. One law per
    call (``jax.vmap`` for batches). Under ``jax.jit`` a ``q`` with a NaN or ``+inf`` entry
    gives the flag: every id ``-1``.

    Args:
      q: draft law (or log-law: the order is the same), float[V].
      n: number of drafts (static), ``1 <= n <= V + 1``; returns ``n - 1`` ids.

    Returns:
      int32[n - 1].

    Raises:
      ValueError: (eagerly) ``q`` not a 1-d float array or holding NaN/``+inf``; ``n`` not a
        positive int or ``n - 1 > V``.

    >>> import jax.numpy as jnp
    >>> greedy_top(jnp.array([0.3, 0.1, 0.3, 0.3]), 3).tolist()
    [0, 2]

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779).
    """
    q = _c.vector(q, "q")
    n = _v.check_n(n)
    if n - 1 > q.shape[-1]:
        raise ValueError(f"n={n} is too large: greedy drafts take the top n - 1 = {n - 1} of V={q.shape[-1]} tokens")
    if n <= 1:
        return jnp.zeros((0,), jnp.int32)
    if _v.is_concrete(q):
        a = np.asarray(q, dtype=np.float64)
        if np.any(np.isnan(a)) or np.any(a == np.inf):
            raise ValueError("q: contains NaN or +inf")
        return jax.lax.top_k(q, n - 1)[1].astype(jnp.int32)
    ok = ~jnp.any(jnp.isnan(q)) & ~jnp.any(q == jnp.inf)
    return jnp.where(ok, jax.lax.top_k(q, n - 1)[1], -1).astype(jnp.int32)


def greedy_children(key: jax.Array, logq: jax.Array, b: int) -> tuple[jax.Array, jax.Array]:
    r"""Greedy children of a tree node from its log draft law: the tree form of
    :func:`greedy_sample`.

    The ``b - 1`` most likely tokens :math:`T` (decreasing :math:`q`, ties to the lower id),
    then one draw from the rest:

    .. math:: X \sim q'(x) = \frac{q(x)\,[x \notin T]}{1 - q(T)}.

    When ``q`` has ``m < b`` tokens of positive mass the valid children are those ``m``
    tokens in decreasing order (``valid`` marks the prefix; the law is
    ``greedy_law(q, m)``, a point mass); the other slots hold token 0. Eagerly the arguments
    are checked; under ``jax.jit`` (traced ``logq``) an invalid ``logq`` (NaN, ``+inf``, no
    finite entry, or ``exp(logq)`` not summing to one within the eager tolerance) gives the
    flag: every slot ``-1`` and invalid. One node per call (``jax.vmap`` for many).

    Args:
      key: a ``jax.random`` key (a single key; used for the last draw only).
      logq: float[V] log-probabilities (``-inf`` for tokens of zero mass).
      b: fan-out (static), a positive int.

    Returns:
      ``(tokens int32[b], valid bool[b])``.

    Raises:
      ValueError: (eagerly) a bad ``key``, ``b``, or ``logq`` (values checked when concrete).

    >>> import jax, jax.numpy as jnp
    >>> tok, ok = greedy_children(jax.random.key(0), jnp.log(jnp.array([0.2, 0.0, 0.8])), 3)
    >>> tok.tolist(), ok.tolist()
    ([2, 0, 0], [True, True, False])

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779).
    """
    return _c.checked_children(_children_core, key, logq, b)


def _children_core(key, logq, b):
    V = logq.shape[-1]
    m = min(b - 1, V)
    if m > 0:
        top_vals, top = jax.lax.top_k(logq, m)
        rest = logq.at[top].set(-jnp.inf)
    else:
        top_vals, top = jnp.zeros((0,), logq.dtype), jnp.zeros((0,), jnp.int32)
        rest = logq
    has_rest = jnp.any(rest > -jnp.inf)
    last = jax.random.categorical(key, jnp.where(has_rest, rest, 0.0)).astype(jnp.int32)
    tok = jnp.concatenate([top.astype(jnp.int32), last[None]])[:b]
    valid = jnp.concatenate([top_vals > -jnp.inf, has_rest[None]])[:b]
    if tok.shape[0] < b:
        pad = b - tok.shape[0]
        tok = jnp.concatenate([tok, jnp.zeros((pad,), jnp.int32)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    return jnp.where(valid, tok, 0).astype(jnp.int32), valid


def greedy_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw greedy drafts: the top ``n - 1`` tokens of ``q``, then one draw from the rest.

    With :math:`T` the ``n - 1`` most likely tokens of ``q`` (decreasing ``q``, ties to the
    lower id), the tuple is :math:`(T_1, \dots, T_{n-1}, X)` with

    .. math:: X \sim q'(x) = \frac{q(x)\,[x \notin T]}{1 - q(T)}.

    The same draws as :func:`greedy_children` on ``log q`` for the same key. One draft law
    per call: a batched (2-d) ``q`` is refused (``jax.vmap`` over rows instead). Under
    ``jax.jit`` an invalid ``q`` (NaN/inf, a negative entry, a sum off by more than the eager
    tolerance) gives the flag: every draft ``-1``; drafts beyond the support of a traced ``q``
    are ``-1`` too.

    Args:
      key: a ``jax.random`` key (a single key).
      q: draft law, float[V]; needs at least ``n`` tokens of positive mass.
      n: number of drafts (static).

    Returns:
      int32[n] distinct token ids (``-1`` flags, see above, under ``jax.jit``).

    Raises:
      ValueError: (eagerly) a bad ``key``, ``q`` not a 1-d probability vector, ``n`` not a
        positive int or above the number of tokens with ``q > 0``.

    >>> import jax, jax.numpy as jnp
    >>> greedy_sample(jax.random.key(0), jnp.array([0.1, 0.6, 0.3]), 3)[:2].tolist()
    [1, 2]

    References:
      Hu, Zheng, Luo, Zhang, Huang. Towards Optimal Multi-draft Speculative Decoding,
      ICLR 2025 (arXiv 2502.18779).
    """
    key = _v.check_key(key)
    q = _c.sampler_law(q)
    n = _v.check_n(n, V=int(q.shape[-1]), replacement=False, support=_v.support_size(q))
    return _sample_core(key, q, n, not _v.is_concrete(q))


@functools.partial(jax.jit, static_argnames=("n", "check"))
def _sample_core(key, q, n, check):
    dt = jnp.result_type(q.dtype, jnp.float32)
    tok, valid = _children_core(key, jnp.log(q.astype(dt)), n)
    return jnp.where(valid & _c.law_ok(q), tok, -1).astype(jnp.int32) if check else tok


def greedy_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of greedy drafts (host side, float64).

    .. math::
        Q(T_1, \dots, T_{n-1}, x) = \frac{q(x)}{1 - q(T)}, \qquad x \notin T,\ q(x) > 0,

    with :math:`T` the ``n - 1`` most likely tokens (decreasing ``q``, ties to the lower id).
    For the children of a tree node, whose fan-out may exceed the support of ``q``, use
    ``GREEDY.children_law(q, n)`` (``greedy_law(q, min(n, support))``).

    Args:
      q: draft law, float[V] (one law; no batches), concrete.
      n: number of drafts, at most the number of tokens with ``q > 0``.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` with ``M = #{x : q(x) > 0} - n + 1``.

    Raises:
      ValueError: if ``q`` is not a 1-d probability vector, or ``n`` is not a positive int or
        exceeds its support.
      TypeError: if ``q`` is traced (the law is enumerated on the host).

    >>> t, w = greedy_law([0.2, 0.5, 0.3], 2)
    >>> t.tolist(), [round(float(x), 4) for x in w]
    ([[1, 0], [1, 2]], [0.4, 0.6])

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779).
    """
    q = _c.host_law(q)
    n = _v.check_n(n, V=q.shape[-1], replacement=False, support=int(np.sum(q > 0)))
    top = np.argsort(-q, kind="stable")[: n - 1]
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
    children=greedy_children,
    family="greedy",
    min_n=1,
    max_n=lambda V: V,
    replacement=False,
)
"""Greedy drafts (Hu et al. 2025): the top ``n - 1`` of ``q`` and one draw from the rest."""
