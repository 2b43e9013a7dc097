r"""Recursive rejection sampling without replacement (recursive speculative decoding, RSD).

The ``n`` drafts are drawn from ``q`` without replacement (Gumbel-top-k on :math:`\log q`).
Step ``j`` is a single-draft test of :math:`x_j` against the exact conditional law
:math:`q_j` of the ``j``-th draw; on rejection both laws are updated,

.. math::
    p_{j+1} = \mathrm{norm}\big((p_j - q_j)_+\big), \qquad
    q_{j+1} = \mathrm{norm}\big(q_j\,[\cdot \neq x_j]\big),

and if all ``n`` are rejected a token is drawn from :math:`p_{n+1}`. Every step is a lossless
single-draft test, so the rule is lossless; its acceptance has no simple closed form
(enumerate it with :func:`spectheory.audit.exact`).

:data:`RSD` is the verifier (built by :func:`spectheory.make_verifier`):
``RSD.verify(key, p, q, drafts)``, ``RSD.verify_with_uniforms(u float[n + 1], p, q, drafts)``
and ``RSD.kernel(p, q, drafts)``; ``p, q: float[V]``, ``drafts: int[n]`` distinct with
``n <= #{x : q(x) > 0}`` (a ``ValueError`` otherwise, when called eagerly).

>>> import jax, jax.numpy as jnp
>>> p = q = jnp.array([0.3, 0.7])
>>> int(RSD.verify(jax.random.key(0), p, q, jnp.array([1, 0])).index)  # p == q: the first draft
0

References:
  Jeon, Gagrani, Goel, Park, Lee, Lott. Recursive Speculative Decoding: Accelerating LLM
  Inference via Sampling Without Replacement (arXiv 2402.14160).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier
from spectheory.verify import _multi


def rsd_laws(p, q, drafts):
    r"""Target and draft laws seen by each step of recursive rejection sampling without
    replacement.

    .. math::
        p_1 = p,\ q_1 = q, \qquad
        p_{j+1} = \mathrm{norm}\big((p_j - q_j)_+\big), \qquad
        q_{j+1}(x) = \frac{q_j(x)\,[x \neq x_j]}{1 - q_j(x_j)}.

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[n], distinct.

    Returns:
      ``(p_x float[n], q_x float[n], p_last float[V])``: :math:`p_j(x_j)`, :math:`q_j(x_j)`
      and the final residual law :math:`p_{n+1}`.

    Raises:
      ValueError: naming ``p``, ``q`` or ``drafts`` (value checks on eager calls).

    >>> import jax.numpy as jnp  # after x_1 = 0: p_2 = (0, 1, 0), q_2 = (0, 0.5, 0.5)
    >>> px, qx, p_last = rsd_laws(jnp.array([0.5, 0.5, 0.0]), jnp.array([0.5, 0.25, 0.25]), jnp.array([0, 1]))
    >>> px.tolist(), qx.tolist(), p_last.tolist()
    ([0.5, 1.0], [0.5, 0.5], [0.0, 1.0, 0.0])

    References:
      Jeon et al., Recursive Speculative Decoding (arXiv 2402.14160).
    """

    def step(carry, x):
        pj, qj = carry
        p_next = _core.normalize(_core.residual_weights(pj, qj))
        q_next = _core.normalize(qj.at[_core.scatter_ids(x, V)].set(0, mode="drop"))
        return (p_next, q_next), (_core.take(pj, x), _core.take(qj, x))

    p, q, drafts = _v.check_position(p, q, drafts)
    V = p.shape[-1]

    (p_last, _), (px, qx) = jax.lax.scan(step, (p, q), drafts)
    return px, qx, p_last


def _rsd_thresholds(p, q, drafts):
    r"""The steps of :func:`rsd_laws` as thresholds, without forming any row (private).

    With ``pz, qz`` = ``p, q`` zeroed on the drafts and :math:`M_j` the mass of ``q`` left
    before draw ``j`` (:math:`M_1 = 1`, then ``sum(qz)`` plus the drafts not yet drawn),
    :math:`q_j = q\,[\cdot \notin \{x_1..x_{j-1}\}] / M_j` and, by induction,
    :math:`p_j = w_j / Z_j` with

    .. math::
        w_j(x) = (p(x) - t_j q(x))_+ \ \text{(x not drawn yet)}, \qquad
        w_j(x_i) = (p(x_i) - t_{i+1} q(x_i))_+ \ (i < j),

    :math:`t_1 = 0`, :math:`Z_1 = 1`, :math:`t_{j+1} = t_j + Z_j / M_j` and
    :math:`Z_{j+1} = \sum_x w_{j+1}(x)`: a drawn token leaves :math:`q_j` and keeps its weight
    from then on. When :math:`Z_{j+1} = 0` everything is kept (:math:`p_{j+1} = p_j`), as in
    :func:`rsd_laws`. Cost: one fused pass over ``pz`` and ``q`` per draft; every sum adds
    non-negative terms (no cancellation).

    Returns:
      ``(px float[n], qx float[n], t float[], frozen float[n], pz float[V])``:
      :math:`p_j(x_j)`, :math:`q_j(x_j)`, :math:`t_{n+1}`, the kept weights
      :math:`w_{n+1}(x_j)`, and ``pz``; :math:`p_{n+1} \propto (pz - t_{n+1} q)_+` plus
      ``frozen`` at the drafts.
    """
    n = drafts.shape[0]
    dt = p.dtype
    ids = _core.scatter_ids(drafts, p.shape[-1])  # a draft outside [0, V): a token of zero mass
    Px, Qx = _core.take(p, drafts), _core.take(q, drafts)
    pz = p.at[ids].set(0, mode="drop")
    q_off = jnp.sum(q.at[ids].set(0, mode="drop"))
    pos = jnp.arange(n)

    def step(carry, j):
        t, Z, M, frozen = carry
        pj = _core.excess(Px[j], t * Qx[j]) / Z
        qj = Qx[j] / M
        t_next = t + Z / M
        w_next = _core.excess(Px, t_next * Qx)  # weights of the drafts at t_next
        frozen_next = jnp.where(pos == j, w_next, frozen)
        Z_next = (jnp.sum(_core.excess(pz, t_next * q))
                  + jnp.sum(jnp.where(pos <= j, frozen_next, w_next)))
        keep = Z_next > 0
        frozen_keep = jnp.where(pos == j, _core.excess(Px, t * Qx), frozen)
        M_next = q_off + jnp.sum(jnp.where(pos > j, Qx, 0))
        carry = (jnp.where(keep, t_next, t), jnp.where(keep, Z_next, Z), M_next,
                 jnp.where(keep, frozen_next, frozen_keep))
        return carry, (pj, qj)

    init = (jnp.zeros((), dt), jnp.ones((), dt), jnp.ones((), dt), jnp.zeros((n,), dt))
    (t, _, _, frozen), (px, qx) = jax.lax.scan(step, init, pos)
    return px, qx, t, frozen, pz


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""Recursive rejection sampling without replacement, with explicit noise.

    The drafts are ``n`` draws without replacement from ``q`` (Gumbel-top-k). Step ``j``
    is a single-draft test of :math:`x_j` against the exact conditional law :math:`q_j` of the
    ``j``-th draw: :math:`x_j` passes iff :math:`u_{j-1}\, q_j(x_j) < p_j(x_j)`, with

    .. math::
        p_{j+1} = \mathrm{norm}\big((p_j - q_j)_+\big), \qquad
        q_{j+1} = \mathrm{norm}\big(q_j\,[\cdot \neq x_j]\big).

    The first passing draft is emitted; if all fail, the inverse-CDF draw with :math:`u_n` from
    :math:`p_{n+1}`. The laws are formed as thresholds (:func:`_rsd_thresholds`), never as rows.

    Args:
      u: float[n + 1] i.i.d. U[0, 1).
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[n], distinct, with ``n <= #{x : q(x) > 0}``.

    Returns:
      :class:`~spectheory.VerifyResult`.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.0, 0.5, 0.5]), jnp.array([0.6, 0.3, 0.1])
    >>> r = RSD.verify_with_uniforms(jnp.array([0.5, 0.3, 0.0]), p, q, jnp.array([0, 1]))
    >>> int(r.token), int(r.index)
    (1, 1)

    References:
      Jeon, Gagrani, Goel, Park, Lee, Lott. Recursive Speculative Decoding: Accelerating LLM
      Inference via Sampling Without Replacement (arXiv 2402.14160).
    """
    n = drafts.shape[0]
    px, qx, t, frozen, pz = _rsd_thresholds(p, q, drafts)
    ok = _core.accepts(u[:n], px, qx)
    y = _core.sample_weighted(u[n], lambda p, q: _core.excess(p, t * q), (pz, q),
                              points=(_core.scatter_ids(drafts, p.shape[-1]), frozen))
    return _multi.first_accepted(ok, drafts, y)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of RSD's emitted token given drafts drawn without replacement.

    .. math::
        K(y \mid \bar x) = \sum_j \Big[\prod_{i<j}(1 - a_i)\Big] a_j\,\delta_{x_j}(y)
        + \Big[\prod_j (1 - a_j)\Big] p_{n+1}(y), \qquad a_j = \min\big(1, p_j(x_j)/q_j(x_j)\big),

    with the laws of :func:`rsd_laws` formed as rows.

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[n], distinct.

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> RSD.kernel(jnp.array([0.0, 1.0]), jnp.array([0.5, 0.5]), jnp.array([0, 1])).tolist()
    [0.0, 1.0]

    References:
      Jeon et al., Recursive Speculative Decoding (arXiv 2402.14160).
    """
    px, qx, p_last = rsd_laws(p, q, drafts)
    return _multi.sequential_kernel(drafts, _core.accept_prob(px, qx), p_last)


RSD = make_verifier(_verify_core, _kernel_core, lambda n: n + 1, distinct=True, name="rsd", guard=False)
"""RSD's verifier: recursive rejection sampling without replacement (``n + 1`` uniforms per
position; no closed-form acceptance, use :func:`spectheory.audit.exact`)."""
