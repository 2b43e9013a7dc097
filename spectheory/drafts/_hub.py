"""Hub drafts (SpecHub, Sun et al. 2024): two drafts, one of which is always argmax q."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme
from spectheory.drafts import _checks as _c


def hub_sample(key: jax.Array, q: jax.Array, n: int = 2) -> jax.Array:
    r"""Draw SpecHub's two drafts: the first from ``q``, the second the hub or a draw from
    ``q`` without the hub.

    With the hub :math:`a = \arg\max_x q(x)` (lowest id on ties):

    .. math::
        x_1 \sim q, \qquad
        x_2 = a \text{ if } x_1 \neq a, \qquad
        x_2 \sim q(\cdot \mid \cdot \neq a) \text{ if } x_1 = a.

    The unordered pair is :math:`\{a, z\}` with :math:`z \sim q(z)/(1 - q(a))`, the same set
    law as greedy drafts with ``n = 2``.

    One draft law per call: a batched (2-d) ``q`` is refused (``jax.vmap`` over rows
    instead). Under ``jax.jit`` an invalid ``q`` (NaN/inf, a negative entry, a sum off by more
    than the eager tolerance, fewer than two tokens of positive mass) gives the flag: both
    drafts ``-1``.

    Args:
      key: a ``jax.random`` key (a single key).
      q: draft law, float[V], with at least two tokens of positive mass.
      n: must be 2.

    Returns:
      int32[2] distinct token ids (``[-1, -1]`` for an invalid traced ``q``).

    Raises:
      ValueError: (eagerly) a bad ``key``, ``n != 2``, or ``q`` not a 1-d probability vector
        with two tokens of positive mass.

    >>> import jax, jax.numpy as jnp
    >>> d = hub_sample(jax.random.key(0), jnp.array([0.2, 0.5, 0.3]))
    >>> 1 in d.tolist()
    True

    References:
      Sun, Zhou, Chen, Sun. SpecHub: Provable Acceleration to Multi-Draft Speculative
      Decoding, EMNLP 2024 (arXiv 2411.05289).
    """
    _check_n(n)
    key = _v.check_key(key)
    q = _c.sampler_law(q)
    _v.check_n(n, V=int(q.shape[-1]), replacement=False, support=_v.support_size(q))
    return _sample_core(key, q, not _v.is_concrete(q))


def _check_n(n) -> None:
    _v.check_n(n)
    if n != 2:
        raise ValueError(f"n: hub drafts are defined for n = 2 only, got {n}")


@functools.partial(jax.jit, static_argnames="check")
def _sample_core(key, q, check):
    dt = jnp.result_type(q.dtype, jnp.float32)
    a = jnp.argmax(q).astype(jnp.int32)
    logq = jnp.where(q > 0, jnp.log(jnp.where(q > 0, q, 1)), -jnp.inf).astype(dt)
    k1, k2 = jax.random.split(key)
    first = jax.random.categorical(k1, logq).astype(jnp.int32)
    other = jax.random.categorical(k2, logq.at[a].set(-jnp.inf)).astype(jnp.int32)
    is_hub = first == a
    out = jnp.stack([first, jnp.where(is_hub, other, a)]).astype(jnp.int32)
    return jnp.where(_c.law_ok(q) & (jnp.sum(q > 0) >= 2), out, -1).astype(jnp.int32) if check else out


def hub_law(q, n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of SpecHub's ordered draft pair (host side, float64).

    .. math::
        Q(z, a) = q(z), \qquad Q(a, z) = \frac{q(a)\, q(z)}{1 - q(a)}, \qquad z \neq a.

    Args:
      q: draft law, float[V] (one law; no batches), concrete, with at least two tokens of
        positive mass.
      n: must be 2.

    Returns:
      ``(tuples int64[M, 2], probs float64[M])``, ``M = 2 (#{x : q(x) > 0} - 1)``.

    Raises:
      ValueError: if ``q`` is not a 1-d probability vector, ``n != 2``, or ``q`` has fewer
        than two tokens of positive mass.
      TypeError: if ``q`` is traced (the law is enumerated on the host).

    >>> t, w = hub_law([0.2, 0.5, 0.3], 2)
    >>> t.tolist(), [round(float(x), 4) for x in w]
    ([[0, 1], [2, 1], [1, 0], [1, 2]], [0.2, 0.3, 0.2, 0.3])

    References:
      Sun, Zhou, Chen, Sun. SpecHub: Provable Acceleration to Multi-Draft Speculative
      Decoding, EMNLP 2024 (arXiv 2411.05289).
    """
    _check_n(n)
    q = _c.host_law(q)
    _v.check_n(n, V=q.shape[-1], replacement=False, support=int(np.sum(q > 0)))
    a = int(np.argmax(q))
    others = np.array([z for z in np.flatnonzero(q > 0) if z != a], dtype=np.int64)
    hub = np.full_like(others, a)
    tuples = np.concatenate([np.stack([others, hub], 1), np.stack([hub, others], 1)])
    rest = q[others].sum()
    probs = np.concatenate([q[others], q[a] * q[others] / rest])
    return tuples, probs


HUB = DraftScheme(
    name="hub",
    sample=hub_sample,
    law=hub_law,
    children=None,  # a tree node's fan-out may exceed its support; the hub law needs two tokens
    family="greedy",  # the draft *set* {a, z} has the law of greedy drafts with n = 2
    min_n=2,
    max_n=lambda V: min(V, 2),
    replacement=False,
)
"""SpecHub's hub drafts (``n = 2``): one draft is always the most likely token of ``q``; its draft
set has the greedy ``n = 2`` law (``family="greedy"``), and trees cannot carry it
(``children=None``)."""
