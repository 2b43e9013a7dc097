r"""SpecHub (Sun et al. 2024): two drafts, one of them the hub a = argmax q.

The hub draft pair is :math:`\{a, z\}` with :math:`a = \arg\max q` and
:math:`z \sim q'(z) = q(z)/(1 - q(a))` (the first draft is drawn from ``q``; if it is the hub
the second is drawn from the rest, else the second is the hub). The verifier accepts
:math:`z` with probability :math:`\min(1, p(z)/q'(z))` and otherwise emits a token from
:math:`\mathrm{norm}(r)`, :math:`r(a) = p(a)`, :math:`r(y) = (p(y) - q'(y))_+` for
:math:`y \neq a`: the greedy-drafts verifier with :math:`T = \{a\}` (the draft *set* has the
law of greedy drafts with ``n = 2``). It is lossless and reaches the optimal acceptance for hub
drafts

.. math::
    \alpha^* = \min\Big(1,\ p(a) + \sum_{i \neq a} \min\big(p(i), \tfrac{q(i)}{1 - q(a)}\big)\Big).

:data:`SPECHUB` is the verifier (built by :func:`spectheory.make_verifier`):
``SPECHUB.verify(key, p, q, drafts)``, ``SPECHUB.verify_with_uniforms(u float[2], p, q,
drafts)``, ``SPECHUB.kernel(p, q, drafts)`` and ``SPECHUB.acceptance``
(:func:`spechub_acceptance`); ``p, q: float[V]``, ``drafts: int[2]``, a hub pair (a
``ValueError`` when it misses ``argmax q``, called eagerly).

>>> import jax, jax.numpy as jnp
>>> p = q = jnp.array([0.3, 0.7])
>>> int(SPECHUB.verify(jax.random.key(0), p, q, jnp.array([1, 0])).index) in (0, 1)
True

References:
  Sun, Zhou, Chen, Sun. SpecHub: Provable Acceleration to Multi-Draft Speculative Decoding,
  EMNLP 2024 (arXiv 2411.05289).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _checks, _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier
from spectheory.verify import _multi
from spectheory.verify._greedy import set_kernel, set_verify_with_uniforms


def _check_hub(p, q, drafts) -> None:
    """Front-door check: the pair contains the hub ``argmax q`` (concrete inputs, or traced
    ones under :func:`spectheory.checked`)."""
    if _v.is_concrete(drafts) and _v.is_concrete(q):
        hub = int(np.argmax(np.asarray(q)))
        if hub not in np.asarray(drafts).tolist():
            raise ValueError(f"drafts: hub drafts must contain the hub argmax(q) = {hub}, got {np.asarray(drafts).tolist()}")
    elif _checks.active():
        _checks.require(jnp.any(drafts == jnp.argmax(q)), "drafts: hub drafts must contain the hub argmax(q)")


def _hub_parts(p, q, drafts):
    hub = jnp.argmax(q)
    other = jnp.where(drafts[0] == hub, drafts[1], drafts[0])
    return _core.one_hot(hub, p.shape[-1], bool), other


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""SpecHub verification of a hub draft pair, with explicit noise.

    The pair is :math:`\{a, z\}` with the hub :math:`a = \arg\max q` and
    :math:`z \sim q'(z) = q(z)/(1 - q(a))` (whatever the order). Accept :math:`z` iff
    :math:`u_0\, q'(z) < p(z)`; otherwise emit the inverse-CDF draw with :math:`u_1` from
    :math:`\mathrm{norm}(r)`, :math:`r(a) = p(a)`, :math:`r(y) = (p(y) - q'(y))_+` for
    :math:`y \neq a`. This is lossless (the transport plan sends :math:`z`'s mass
    :math:`\min(p, q')` to itself and the rest to the residual, while the hub keeps its own
    target mass), and reaches the optimal acceptance for hub drafts

    .. math::
        \alpha^* = \min\Big(1,\ p(a) + \sum_{i \neq a} \min\big(p(i), \tfrac{q(i)}{1 - q(a)}\big)\Big).

    Derived here from the hub draft law; the acceptance is the one SpecHub states, and the
    exact audit and the transport LP confirm both losslessness and optimality.

    Args:
      u: float[2] i.i.d. U[0, 1).
      p: target law, float[V].
      q: draft law, float[V], at least two tokens of positive mass.
      drafts: int[2], a hub pair (contains ``argmax q``).

    Returns:
      :class:`~spectheory.VerifyResult`; ``index`` is the position of the emitted token among
      the drafts (the hub emitted by the residual counts), or -1.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.1, 0.2, 0.7]), jnp.array([0.6, 0.3, 0.1])
    >>> r = SPECHUB.verify_with_uniforms(jnp.array([0.1, 0.5]), p, q, jnp.array([2, 0]))
    >>> int(r.token), int(r.index)
    (2, 0)

    References:
      Sun, Zhou, Chen, Sun. SpecHub: Provable Acceleration to Multi-Draft Speculative
      Decoding, EMNLP 2024 (arXiv 2411.05289).
    """
    hub = jnp.argmax(q)
    other = jnp.where(drafts[0] == hub, drafts[1], drafts[0])
    return set_verify_with_uniforms(u, p, q, hub[None], other, drafts)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of SpecHub's emitted token given the hub pair :math:`\{a, z\}`.

    .. math::
        K(y \mid a, z) = c\,\delta_z(y) + (1 - c)\,\mathrm{norm}(r)(y), \qquad
        c = \min\big(1, p(z)/q'(z)\big).

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[2].

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> SPECHUB.kernel(jnp.array([1.0, 0.0, 0.0]), jnp.array([0.5, 0.3, 0.2]), jnp.array([0, 1])).tolist()
    [1.0, 0.0, 0.0]

    References:
      Sun et al., SpecHub (arXiv 2411.05289).
    """
    in_top, other = _hub_parts(p, q, drafts)
    return set_kernel(p, q, in_top, other)


def spechub_acceptance(p, q, n: int = 2) -> jax.Array:
    r"""Closed-form acceptance of SpecHub (optimal for hub drafts).

    .. math::
        \alpha = \min\Big(1,\ p(a) + \sum_{i \neq a} \min\big(p(i), \tfrac{q(i)}{1 - q(a)}\big)\Big),
        \qquad a = \arg\max q.

    Args:
      p: target law, float[..., V]. q: draft law, float[..., V]. n: must be 2.

    Returns:
      float[...].

    >>> import jax.numpy as jnp
    >>> round(float(spechub_acceptance(jnp.array([0.1, 0.2, 0.7]), jnp.array([0.6, 0.3, 0.1]))), 6)
    0.55

    References:
      Sun et al., SpecHub (arXiv 2411.05289).
    """
    if n != 2:
        raise ValueError(f"n: SpecHub takes n = 2, got {n}")
    return _multi.batched_acceptance(_acceptance_core, p, q)


@jax.jit
def _acceptance_core(p, q):
    hub = _core.one_hot(jnp.argmax(q), p.shape[-1], bool)
    q_rest = _core.normalize(jnp.where(hub, 0, q))
    alpha = jnp.minimum(1, jnp.sum(jnp.where(hub, p, jnp.minimum(p, q_rest))))
    return jnp.where(jnp.all(jnp.isfinite(q)), alpha, jnp.nan)  # a NaN of q at the hub is not hidden


SPECHUB = make_verifier(_verify_core, _kernel_core, lambda n: 2, n=2, distinct=True, check=_check_hub,
                        acceptance=spechub_acceptance, name="spechub", guard=False)
"""SpecHub's verifier for hub draft pairs (``n = 2``, two uniforms per position)."""
