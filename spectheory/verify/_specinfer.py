r"""Recursive rejection sampling with replacement (SpecInfer): n i.i.d. drafts.

The drafts :math:`x_1, \dots, x_n` are i.i.d. from ``q``. With :math:`p_1 = p`, draft
:math:`x_j` is tested against :math:`p_j` with the single-draft rule and, on rejection, the
target becomes the normalised residual :math:`p_{j+1} = \mathrm{norm}((p_j - q)_+)`; the first
accepted draft is emitted, and if all ``n`` are rejected a token is drawn from
:math:`p_{n+1}`. The acceptance rate is

.. math:: \alpha = 1 - \prod_{j=1}^{n} \Big(1 - \sum_x \min(p_j(x), q(x))\Big).

:data:`SPECINFER` is the verifier (built by :func:`spectheory.make_verifier`):
``SPECINFER.verify(key, p, q, drafts)``, ``SPECINFER.verify_with_uniforms(u float[n + 1], p, q,
drafts)``, ``SPECINFER.kernel(p, q, drafts)`` and ``SPECINFER.acceptance``
(:func:`specinfer_acceptance`); ``p, q: float[V]``, ``drafts: int[n]``.

>>> import jax, jax.numpy as jnp
>>> p = q = jnp.array([0.3, 0.7])
>>> int(SPECINFER.verify(jax.random.key(0), p, q, jnp.array([1, 0])).index)  # p == q: the first draft
0

References:
  Miao et al. SpecInfer: Accelerating Large Language Model Serving with Tree-based
  Speculative Inference and Verification, ASPLOS 2024 (arXiv 2305.09781).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier
from spectheory.verify import _multi


def _checked_pair(p, q, n):
    """Front door of the helpers: ``p, q`` probability vectors of one vocabulary (cast to their
    common dtype; value checks on concrete input only) and ``n`` a positive int."""
    p, q = _v.as_probs(p, "p"), _v.as_probs(q, "q")
    _v.same_vocab(p, q)
    dt = _core.float_dtype(p, q)
    return p.astype(dt), q.astype(dt), _v.check_n(n)


def specinfer_targets(p, q, n: int):
    r"""The sequence of target laws of recursive rejection sampling with replacement.

    .. math:: p_1 = p, \qquad p_{j+1} = \mathrm{norm}\big((p_j - q)_+\big)

    (:math:`p_{j+1} = p_j` when :math:`(p_j - q)_+` has no mass, which happens only when
    rejection has probability zero).

    Args:
      p: target law, float[V]. q: draft law, float[V]. n: number of drafts (static).

    Returns:
      float[n + 1, V]: rows :math:`p_1, \dots, p_{n+1}`.

    Raises:
      ValueError: naming ``p``, ``q`` or ``n`` (value checks on eager calls).

    >>> import jax.numpy as jnp  # (p - q)+ = (0, 0.4): every later target is the point mass at 1
    >>> specinfer_targets(jnp.array([0.5, 0.5]), jnp.array([0.9, 0.1]), 2).tolist()
    [[0.5, 0.5], [0.0, 1.0], [0.0, 1.0]]

    References:
      Miao et al., SpecInfer (arXiv 2305.09781), multi-step speculative sampling.
    """

    p, q, n = _checked_pair(p, q, n)

    def step(pj, _):
        return _core.normalize(_core.residual_weights(pj, q)), pj

    last, rows = jax.lax.scan(step, p, None, length=n)
    return jnp.concatenate([rows, last[None]], axis=0)


def specinfer_thresholds(p, q, n: int):
    r"""The targets of :func:`specinfer_targets` as thresholds, without forming any row.

    By induction every target is a thresholded residual of ``p`` itself,

    .. math::
        p_j = \frac{(p - t_j q)_+}{Z_j}, \qquad t_1 = 0,\ Z_1 = 1, \qquad
        t_{j+1} = t_j + Z_j, \qquad Z_{j+1} = \sum_x \big(p(x) - t_{j+1} q(x)\big)_+ ,

    since :math:`(p_j - q)_+ = (p - (t_j + Z_j) q)_+ / Z_j` (where :math:`p \le t_j q` both
    sides vanish). When :math:`Z_{j+1} = 0` (rejection has probability zero) the pair is kept,
    :math:`p_{j+1} = p_j`, as in :func:`specinfer_targets`. Cost: one fused pass over ``p``
    and ``q`` per draft.

    Args:
      p: target law, float[V]. q: draft law, float[V]. n: number of drafts (static).

    Returns:
      ``(t, Z)``, each float[n + 1].

    Raises:
      ValueError: naming ``p``, ``q`` or ``n`` (value checks on eager calls).

    >>> import jax.numpy as jnp  # t_2 = 1, Z_2 = 0.4; t_3 = 1.4, Z_3 = (0.5 - 0.14) = 0.36
    >>> t, Z = specinfer_thresholds(jnp.array([0.5, 0.5]), jnp.array([0.9, 0.1]), 2)
    >>> [round(float(x), 12) for x in t], [round(float(x), 12) for x in Z]
    ([0.0, 1.0, 1.4], [1.0, 0.4, 0.36])

    References:
      Miao et al., SpecInfer (arXiv 2305.09781); the threshold form is derived here and checked
      against :func:`specinfer_targets` in the tests.
    """

    p, q, n = _checked_pair(p, q, n)

    def step(carry, _):
        t, Z = carry
        t_next = t + Z
        Z_next = jnp.sum(_core.excess(p, t_next * q))
        keep = Z_next > 0
        return (jnp.where(keep, t_next, t), jnp.where(keep, Z_next, Z)), (t, Z)

    zero, one = jnp.zeros((), p.dtype), jnp.ones((), p.dtype)
    last, (t, Z) = jax.lax.scan(step, (zero, one), None, length=n)
    return jnp.append(t, last[0]), jnp.append(Z, last[1])


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""SpecInfer's multi-draft verification with explicit noise.

    With :math:`p_1 = p` and :math:`p_{j+1} = \mathrm{norm}((p_j - q)_+)`, draft :math:`x_j`
    passes iff :math:`u_{j-1}\, q(x_j) < p_j(x_j)`; the first passing draft is emitted. If all
    ``n`` fail, the token is the inverse-CDF draw with :math:`u_n` from :math:`p_{n+1}`:

    .. math::
        P(\text{accept}) = 1 - \prod_{j=1}^{n} \Big(1 - \sum_x \min(p_j(x), q(x))\Big).

    The targets are formed as thresholds (:func:`specinfer_thresholds`), never as rows.

    Args:
      u: float[n + 1] i.i.d. U[0, 1): one coin per draft, then the residual draw.
      p: target law, float[V].
      q: draft law, float[V] (the drafts are i.i.d. from it).
      drafts: int[n].

    Returns:
      :class:`~spectheory.VerifyResult`; ``index`` is the passing draft's position or -1.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.2, 0.2, 0.6])
    >>> r = SPECINFER.verify_with_uniforms(jnp.array([0.0, 0.0, 0.7]), p, q, jnp.array([2, 1]))
    >>> int(r.token), int(r.index)
    (1, 1)

    References:
      Miao et al. SpecInfer: Accelerating Large Language Model Serving with Tree-based
      Speculative Inference and Verification, ASPLOS 2024 (arXiv 2305.09781).
    """
    n = drafts.shape[0]
    t, Z = specinfer_thresholds(p, q, n)
    px, qx = _core.take(p, drafts), _core.take(q, drafts)
    ok = _core.accepts(u[:n], _core.excess(px, t[:n] * qx) / Z[:n], qx)
    y = _core.sample_weighted(u[n], lambda p, q: _core.excess(p, t[n] * q), (p, q))
    return _multi.first_accepted(ok, drafts, y)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of SpecInfer's emitted token given i.i.d. drafts :math:`x_1..x_n`.

    .. math::
        K(y \mid \bar x) = \sum_j \Big[\prod_{i<j}(1 - a_i)\Big] a_j\,\delta_{x_j}(y)
        + \Big[\prod_j (1 - a_j)\Big] p_{n+1}(y), \qquad a_j = \min\big(1, p_j(x_j)/q(x_j)\big),

    with the targets :math:`p_j` of :func:`specinfer_targets` formed as rows.

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[n].

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> SPECINFER.kernel(jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5]), jnp.array([1, 1])).tolist()
    [1.0, 0.0]

    References:
      Miao et al. SpecInfer: Accelerating Large Language Model Serving with Tree-based
      Speculative Inference and Verification, ASPLOS 2024 (arXiv 2305.09781).
    """
    n = drafts.shape[0]
    P = specinfer_targets(p, q, n)
    a = _core.accept_prob(_core.take_rows(P[:n], drafts), _core.take(q, drafts))
    return _multi.sequential_kernel(drafts, a, P[n])


def specinfer_acceptance(p, q, n: int) -> jax.Array:
    r"""Closed-form acceptance rate of SpecInfer with ``n`` i.i.d. drafts.

    .. math:: \alpha = 1 - \prod_{j=1}^{n} \Big(1 - \sum_x \min(p_j(x), q(x))\Big)

    Args:
      p: target law, float[..., V]. q: draft law, float[..., V]. n: number of drafts.

    Returns:
      float[...].

    >>> import jax.numpy as jnp
    >>> float(specinfer_acceptance(jnp.array([0.5, 0.5]), jnp.array([0.9, 0.1]), 2))  # 1 - 0.4 * 0.9
    0.64

    References:
      Miao et al. SpecInfer: Accelerating Large Language Model Serving with Tree-based
      Speculative Inference and Verification, ASPLOS 2024 (arXiv 2305.09781).
    """
    n = _v.check_n(n)
    return _multi.batched_acceptance(functools.partial(_acceptance_core, n=n), p, q)


@functools.partial(jax.jit, static_argnames="n")
def _acceptance_core(p, q, n):
    P = specinfer_targets(p, q, n)
    beta = jnp.sum(jnp.minimum(P[:n], q), axis=-1)
    return 1 - jnp.prod(1 - beta)


SPECINFER = make_verifier(_verify_core, _kernel_core, lambda n: n + 1, acceptance=specinfer_acceptance,
                          name="specinfer", guard=False)
"""SpecInfer's verifier: recursive rejection sampling with replacement over i.i.d. drafts
(``n + 1`` uniforms per position)."""
