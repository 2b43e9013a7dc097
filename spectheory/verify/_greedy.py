r"""The optimal verifier for greedy drafts (Hu et al. 2025).

Greedy drafts are :math:`(T_1, \dots, T_{n-1}, X)`: :math:`T` the ``n - 1`` most likely tokens
of ``q`` (deterministic) and one draw :math:`X \sim q' = \mathrm{norm}(q\,[\cdot \notin T])`.
The verifier accepts :math:`X` with probability :math:`\min(1, p(X)/q'(X))` and otherwise
emits a token from :math:`\mathrm{norm}(r)`,

.. math::
    r(y) = p(y) \ (y \in T), \qquad r(y) = (p(y) - q'(y))_+ \ (y \notin T),

which is lossless and reaches the transport-LP optimum for this draft law,

.. math:: \alpha^* = p(T) + \sum_{y \notin T} \min\big(p(y), q'(y)\big).

The pieces :func:`set_verify_with_uniforms` and :func:`set_kernel` (a fixed set plus one
draw from the rest) are shared with SpecHub.

:data:`GREEDY_OPTIMAL` is the verifier (built by :func:`spectheory.make_verifier`):
``GREEDY_OPTIMAL.verify(key, p, q, drafts)``, ``GREEDY_OPTIMAL.verify_with_uniforms(u float[2], p, q,
drafts)``, ``GREEDY_OPTIMAL.kernel(p, q, drafts)`` and ``GREEDY_OPTIMAL.acceptance``
(:func:`greedy_acceptance`); ``p, q: float[V]``, ``drafts: int[n]`` distinct.

>>> import jax, jax.numpy as jnp
>>> p = q = jnp.array([0.3, 0.7])
>>> int(GREEDY_OPTIMAL.verify(jax.random.key(0), p, q, jnp.array([1, 0])).token) in (0, 1)
True

References:
  Hu, Zheng, Luo, Zhang, Huang. Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
  (arXiv 2502.18779).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier
from spectheory.drafts._greedy import greedy_top
from spectheory.verify import _multi


def _set_parts(p, q, in_top, x):
    """Pass probability pieces of the verifier for a draft set ``T + {x}`` with ``x ~ q'``.

    Returns ``(p_x, q'_x, residual weights r)`` with ``q' = norm(q [not in T])`` and
    ``r = p`` on ``T``, ``(p - q')_+`` off ``T`` (``p`` when ``r`` has no mass).
    """
    q_rest = _core.normalize(jnp.where(in_top, 0, q))
    q_rest = jnp.where(jnp.all(jnp.isfinite(q)), q_rest, jnp.nan)  # a NaN or inf in T is not hidden
    r = jnp.where(in_top, p, jnp.maximum(p - q_rest, 0))
    r = jnp.where(jnp.sum(r) == 0, p, r)
    return _core.take(p, x), _core.take(q_rest, x), r


def set_verify_with_uniforms(u, p, q, top, x, drafts) -> VerifyResult:
    """Verification of a fixed set ``T`` plus one draft ``x ~ q(. | not in T)`` (shared by
    greedy drafts and SpecHub). ``top`` is int[k], the distinct tokens of ``T``.

    Same numbers as :func:`_set_parts` without forming ``q'`` or ``r``: with ``qz`` = ``q``
    zeroed on ``T``, ``q' = qz / sum(qz)`` and ``r = (p - q')_+`` (which is ``p`` on ``T``); the
    fallback ``r = p`` is ``q'`` scaled to zero. The residual is drawn in one fused pass.
    """
    V = p.shape[-1]
    qz = q.at[_core.scatter_ids(top, V)].set(0, mode="drop")
    s = jnp.sum(qz)
    m = jnp.where(s > 0, s, 1)
    # zeroing T must not hide a NaN or inf of q there: it still reaches the residual (flag -1)
    m = jnp.where(jnp.isfinite(jnp.sum(_core.take(q, top))), m, jnp.nan)
    px, qx = _core.take(p, x), _core.take(qz, x) / m
    ok = _core.accepts(u[0], px, qx)
    no_mass = jnp.sum(_core.excess(p, qz / m)) == 0
    m = jnp.where(no_mass, jnp.inf, m)  # qz / inf = 0: r = p
    y = _core.sample_weighted(u[1], lambda p, qz: _core.excess(p, qz / m), (p, qz))
    return _multi.matching(drafts, _core.accept_or_draw(ok, x, y))


def set_kernel(p, q, in_top, x) -> jax.Array:
    """Kernel of :func:`set_verify_with_uniforms`: ``a delta_x + (1 - a) norm(r)``."""
    px, qx, r = _set_parts(p, q, in_top, x)
    a = _core.accept_prob(px, qx)
    return a * _core.one_hot(x, p.shape[-1], p.dtype) + (1 - a) * _core.normalize(r)


def _top_mask(p, drafts):
    return jnp.zeros(p.shape, bool).at[_core.scatter_ids(drafts[:-1], p.shape[-1])].set(True, mode="drop")


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""Optimal verification of greedy drafts, with explicit noise.

    The drafts are :math:`(T_1, \dots, T_{n-1}, X)`: :math:`T` the ``n - 1`` most likely
    tokens of ``q`` and :math:`X \sim q' = \mathrm{norm}(q\,[\cdot \notin T])`. Accept
    :math:`X` iff :math:`u_0\, q'(X) < p(X)`; otherwise emit the inverse-CDF draw with
    :math:`u_1` from :math:`\mathrm{norm}(r)`,

    .. math::
        r(y) = p(y) \ (y \in T), \qquad r(y) = (p(y) - q'(y))_+ \ (y \notin T),

    which reaches the optimum for this draft law,
    :math:`\alpha^* = p(T) + \sum_{y \notin T} \min(p(y), q'(y))`.

    Args:
      u: float[2] i.i.d. U[0, 1).
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[n], greedy drafts (the first ``n - 1`` define :math:`T`).

    Returns:
      :class:`~spectheory.VerifyResult`; ``index`` is the position of the emitted token among
      the drafts (a token of :math:`T` emitted by the residual counts), or -1.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.1, 0.2, 0.7]), jnp.array([0.6, 0.3, 0.1])
    >>> r = GREEDY_OPTIMAL.verify_with_uniforms(jnp.array([0.9, 0.05]), p, q, jnp.array([0, 1]))
    >>> int(r.token), int(r.index)
    (0, 0)

    References:
      Hu, Zheng, Luo, Zhang, Huang. Towards Optimal Multi-draft Speculative Decoding,
      ICLR 2025 (arXiv 2502.18779).
    """
    return set_verify_with_uniforms(u, p, q, drafts[:-1], drafts[-1], drafts)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of the emitted token given greedy drafts :math:`(T, X)`.

    .. math::
        K(y \mid T, X) = a\,\delta_X(y) + (1 - a)\,\mathrm{norm}(r)(y), \qquad
        a = \min\big(1, p(X)/q'(X)\big).

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[n].

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> GREEDY_OPTIMAL.kernel(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5]), jnp.array([0, 1])).tolist()
    [0.5, 0.5]

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding (arXiv 2502.18779).
    """
    return set_kernel(p, q, _top_mask(p, drafts), drafts[-1])


def greedy_acceptance(p, q, n: int) -> jax.Array:
    r"""Closed-form acceptance of greedy drafts with the optimal verifier.

    .. math:: \alpha^* = p(T) + \sum_{y \notin T} \min\big(p(y), q'(y)\big),
              \qquad q' = \mathrm{norm}(q\,[\cdot \notin T]),

    :math:`T` the ``n - 1`` most likely tokens of ``q``. Equals the transport-LP optimum for
    this draft law.

    Args:
      p: target law, float[..., V]. q: draft law, float[..., V]. n: number of drafts.

    Returns:
      float[...].

    >>> import jax.numpy as jnp
    >>> round(float(greedy_acceptance(jnp.array([0.1, 0.2, 0.7]), jnp.array([0.6, 0.3, 0.1]), 2)), 6)
    0.55

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding (arXiv 2502.18779).
    """
    n = _v.check_n(n)
    return _multi.batched_acceptance(functools.partial(_acceptance_core, n=n), p, q)


@functools.partial(jax.jit, static_argnames="n")
def _acceptance_core(p, q, n):
    in_top = jnp.zeros(p.shape, bool).at[greedy_top(q, n)].set(True)
    q_rest = _core.normalize(jnp.where(in_top, 0, q))
    alpha = jnp.sum(jnp.where(in_top, p, jnp.minimum(p, q_rest)))
    return jnp.where(jnp.all(jnp.isfinite(q)), alpha, jnp.nan)  # a NaN of q in T is not hidden


GREEDY_OPTIMAL = make_verifier(_verify_core, _kernel_core, lambda n: 2, distinct=True, acceptance=greedy_acceptance,
                       name="greedy", guard=False)
"""The optimal verifier for greedy drafts (Hu et al. 2025): two uniforms per position."""
