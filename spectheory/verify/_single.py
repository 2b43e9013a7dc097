r"""Single-draft speculative sampling: the maximal coupling of q and p.

One draft :math:`x \sim q` is accepted with probability :math:`\min(1, p(x)/q(x))`; on
rejection a token is drawn from the normalised residual

.. math:: r = \frac{(p - q)_+}{\sum_y (p(y) - q(y))_+}

(``p`` itself when the residual has no mass, which happens only when ``p == q`` and rejection
has probability zero: nothing is ever divided by that zero). The output has law ``p`` and the
acceptance rate is :math:`\sum_x \min(p(x), q(x)) = 1 - \mathrm{TV}(p, q)`, the maximal
coupling, optimal for one draft.

:data:`SINGLE` is the verifier, built by :func:`spectheory.make_verifier` from the uniform
form and the kernel below: ``SINGLE.verify(key, p, q, drafts)``,
``SINGLE.verify_with_uniforms(u float[2], p, q, drafts)``, ``SINGLE.kernel(p, q, drafts)`` and
``SINGLE.acceptance`` (:func:`single_acceptance`); ``p, q: float[V]``, ``drafts: int[1]``.

>>> import jax, jax.numpy as jnp
>>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.2, 0.2, 0.6])
>>> r = SINGLE.verify(jax.random.key(0), p, q, jnp.array([0]))  # p(0) >= q(0): always accepted
>>> int(r.token), int(r.index)
(0, 0)
>>> SINGLE.kernel(p, q, jnp.array([2])).tolist()  # p(2) = 0: rejected, residual (0.3, 0.3, 0)
[0.5, 0.5, 0.0]

References:
  Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding,
  ICML 2023 (arXiv 2211.17192). Chen et al. Accelerating Large Language Model Decoding with
  Speculative Sampling (arXiv 2302.01318).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""Single-draft verification with explicit noise (maximal coupling).

    Accept the draft :math:`x` iff :math:`u_0\,q(x) < p(x)`, i.e. with probability
    :math:`\min(1, p(x)/q(x))` (a uniform exactly 0 never accepts a token with
    :math:`p(x) = 0`); otherwise emit the inverse-CDF draw with :math:`u_1` from

    .. math:: r = \frac{(p - q)_+}{\sum_y (p(y) - q(y))_+}.

    Args:
      u: float[2] i.i.d. U[0, 1): ``u_0`` decides acceptance, ``u_1`` samples the residual.
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[1], the draft token.

    Returns:
      :class:`~spectheory.VerifyResult` ``(token, index)`` with ``index`` 0 on acceptance and
      -1 on rejection.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.2, 0.2, 0.6])
    >>> r = SINGLE.verify_with_uniforms(jnp.array([0.99, 0.3]), p, q, jnp.array([2]))
    >>> int(r.token), int(r.index)
    (0, -1)

    References:
      Leviathan, Kalman, Matias 2023 (arXiv 2211.17192), Algorithm 1; Chen et al. 2023
      (arXiv 2302.01318), Algorithm 2.
    """
    x = drafts[0]
    ok = _core.accepts(u[0], _core.take(p, x), _core.take(q, x))
    y = _core.sample_index(u[1], _core.residual_weights(p, q))
    token = _core.accept_or_draw(ok, x, y)
    index = jnp.where(ok & (token >= 0), 0, -1).astype(jnp.int32)
    return VerifyResult(token, index)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of the emitted token given the draft :math:`x`.

    .. math:: K(y \mid x) = a\,\delta_x(y) + (1 - a)\, r(y),\qquad a = \min(1, p(x)/q(x)),

    with :math:`r` the normalised residual :math:`(p - q)_+` (``p`` when that is zero). A
    draft with :math:`q(x) = 0` (legal input, never drawn) is accepted iff :math:`p(x) > 0`.

    Args:
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[1].

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> SINGLE.kernel(jnp.array([0.2, 0.8]), jnp.array([0.5, 0.5]), jnp.array([0])).tolist()  # a = 0.4
    [0.4, 0.6]

    References:
      Leviathan et al. 2023 (arXiv 2211.17192), Appendix A.
    """
    x = drafts[0]
    a = _core.accept_prob(_core.take(p, x), _core.take(q, x))
    r = _core.normalize(_core.residual_weights(p, q))
    return a * _core.one_hot(x, p.shape[-1], p.dtype) + (1 - a) * r


def single_acceptance(p, q, n: int = 1) -> jax.Array:
    r"""Acceptance rate of single-draft verification.

    .. math:: \alpha = \sum_x \min(p(x), q(x)) = 1 - \mathrm{TV}(p, q).

    Args:
      p: target law, float[..., V].
      q: draft law, float[..., V].
      n: must be 1.

    Returns:
      float[...].

    >>> import jax.numpy as jnp
    >>> round(float(single_acceptance(jnp.array([0.5, 0.5]), jnp.array([0.9, 0.1]))), 6)
    0.6

    References:
      Leviathan et al. 2023 (arXiv 2211.17192), Sec. 3.
    """
    if n != 1:
        raise ValueError(f"n: the single-draft rule takes n = 1, got {n}")
    p = _v.as_probs(p, "p", ndim=None)
    q = _v.as_probs(q, "q", ndim=None)
    _v.same_vocab(p, q)
    return jnp.sum(jnp.minimum(p, q), axis=-1)


SINGLE = make_verifier(_verify_core, _kernel_core, lambda n: 2, n=1, acceptance=single_acceptance, name="single", guard=False)
"""The single-draft (maximal coupling) verifier: two uniforms per position."""
