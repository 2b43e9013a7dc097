"""Single-draft speculative sampling: the maximal coupling of q and p."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import Verifier, VerifyResult


def single_verify_with_uniforms(uniforms, p, q, drafts) -> VerifyResult:
    r"""Single-draft verification with explicit noise (maximal coupling).

    Accept the draft :math:`x` iff :math:`u_0\,q(x) < p(x)`, i.e. with probability
    :math:`\min(1, p(x)/q(x))`; otherwise emit the inverse-CDF draw with :math:`u_1` from

    .. math:: r = \frac{(p - q)_+}{\sum_y (p(y) - q(y))_+}.

    Args:
      uniforms: float[2] i.i.d. U[0, 1): ``u_0`` decides acceptance, ``u_1`` samples the
        residual.
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[1], the draft token.

    Returns:
      :class:`~spectheory.VerifyResult` ``(token, index)`` with ``index`` 0 on acceptance and
      -1 on rejection.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.2, 0.2, 0.6])
    >>> r = single_verify_with_uniforms(jnp.array([0.99, 0.3]), p, q, jnp.array([2]))
    >>> int(r.token), int(r.index)
    (0, -1)

    References:
      Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding,
      ICML 2023 (arXiv 2211.17192). Chen et al. Accelerating Large Language Model Decoding
      with Speculative Sampling (arXiv 2302.01318).
    """
    p, q, drafts = _v.check_position(p, q, drafts, n=1)
    u = _v.check_uniforms(uniforms, 2)
    x = drafts[0]
    ok = _core.accepts(u[0].astype(p.dtype), p[x], q[x])
    y = _core.sample_index(u[1].astype(p.dtype), _core.residual_weights(p, q))
    token = jnp.where(ok, x, y).astype(jnp.int32)
    index = jnp.where(ok, 0, -1).astype(jnp.int32)
    return VerifyResult(token, index)


def single_verify(key, p, q, drafts) -> VerifyResult:
    """Single-draft verification drawing its two uniforms from ``key``.

    Same as :func:`single_verify_with_uniforms` with
    ``uniforms = jax.random.uniform(key, (2,), dtype)``.

    Args:
      key: a ``jax.random`` key.
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[1].
    """
    dtype = _core.float_dtype(p, q)
    return single_verify_with_uniforms(jax.random.uniform(key, (2,), dtype), p, q, drafts)


def single_kernel(p, q, drafts) -> jax.Array:
    r"""Exact law of the emitted token given the draft :math:`x`.

    .. math:: K(y \mid x) = a\,\delta_x(y) + (1 - a)\, r(y),\qquad a = \min(1, p(x)/q(x)),

    with :math:`r` the normalised residual :math:`(p - q)_+` (``p`` when that is zero).

    Args:
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[1].

    Returns:
      float[V], a probability vector.
    """
    p, q, drafts = _v.check_position(p, q, drafts, n=1)
    x = drafts[0]
    a = _core.accept_prob(p[x], q[x])
    r = _core.normalize(_core.residual_weights(p, q))
    return a * _core.one_hot(x, p.shape[-1], p.dtype) + (1 - a) * r


def single_acceptance(p, q, n: int = 1) -> jax.Array:
    r"""Acceptance rate of single-draft verification: :math:`\sum_x \min(p(x), q(x)) = 1 - \mathrm{TV}(p, q)`.

    Args:
      p: target law, float[..., V].
      q: draft law, float[..., V].
      n: must be 1.
    """
    if n != 1:
        raise ValueError(f"n: the single-draft rule takes n = 1, got {n}")
    p = _v.as_probs(p, "p", ndim=None)
    q = _v.as_probs(q, "q", ndim=None)
    _v.same_vocab(p, q)
    return jnp.sum(jnp.minimum(p, q), axis=-1)


SINGLE = Verifier(
    verify=single_verify,
    kernel=single_kernel,
    verify_with_uniforms=single_verify_with_uniforms,
    num_uniforms=lambda n: 2,
    acceptance=single_acceptance,
)
"""The single-draft (maximal coupling) verifier."""
