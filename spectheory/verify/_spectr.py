r"""SpecTr's K-SEQ: sequential acceptance with a common slack factor rho (i.i.d. drafts).

With :math:`\beta(\rho) = \sum_x \min(q(x), p(x)/\rho)` and :math:`\rho^* \in [1, n]` the root
of :math:`1 - (1 - \beta(\rho))^n = \rho\,\beta(\rho)` (:func:`spectr_rho`), the ``n`` i.i.d.
candidates are accepted in order, each with probability :math:`\min(1, p(x_j)/(\rho^* q(x_j)))`;
if all are rejected a token is drawn from the residual :func:`spectr_residual`. Acceptance

.. math:: \alpha = 1 - \big(1 - \beta(\rho^*)\big)^n \ \ge\ \big(1 - (1 - 1/n)^n\big)\,\alpha^*,

with :math:`\alpha^*` the transport-LP optimum for i.i.d. drafts. (Accepting each candidate
independently with the single-draft probability is *not* lossless; see
:data:`spectheory.testing.naive_independent_verifier`.)

:data:`SPECTR` is the verifier (built by :func:`spectheory.make_verifier`):
``SPECTR.verify(key, p, q, drafts)``, ``SPECTR.verify_with_uniforms(u float[n + 1], p, q,
drafts)``, ``SPECTR.kernel(p, q, drafts)`` and ``SPECTR.acceptance``
(:func:`spectr_acceptance`); ``p, q: float[V]``, ``drafts: int[n]``.

>>> import jax, jax.numpy as jnp
>>> p = q = jnp.array([0.3, 0.7])
>>> int(SPECTR.verify(jax.random.key(0), p, q, jnp.array([1, 0])).index)  # p == q: rho* = 1
0

References:
  Sun, Suresh, Ro, Beirami, Jain, Yu. SpecTr: Fast Speculative Decoding via Optimal
  Transport, NeurIPS 2023 (arXiv 2310.15141), K-SEQ.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import VerifyResult, make_verifier
from spectheory.verify import _multi

#: Bisection steps for rho* in float64 (float32 and narrower use 32): enough to shrink
#: [1, n] (n <= 2**10) below one ulp.
BISECTION_STEPS = 64


def _beta(p, q, rho):
    return jnp.sum(jnp.minimum(q, p / rho), axis=-1)


def _gap(beta, rho_beta, n):
    """f = 1 - (1 - beta)^n - rho * beta, written with rho * beta given separately."""
    return 1 - jnp.clip(1 - beta, 0, 1) ** n - rho_beta


def _f(p, q, rho, n):
    mins = jnp.minimum(rho * q, p)  # rho * min(q, p / rho), no division
    rho_beta = jnp.sum(mins)
    return _gap(rho_beta / rho, rho_beta, n)


@functools.partial(jax.jit, static_argnames="n")
def _rho_core(p, q, n: int) -> jax.Array:
    """rho* for validated 1-d ``p, q`` of one dtype and a static int ``n`` (see spectr_rho)."""
    dt = p.dtype
    one = jnp.ones((), dt)
    if n == 1:
        return one
    steps = BISECTION_STEPS if dt == jnp.float64 else 32

    # Stop once the midpoint rounds to an end: every later step would leave ``hi`` unchanged
    # (the kept end has already been tested, or is 1 and then overridden below), so this is
    # the fixed-step bisection, bit for bit, in about 24 passes instead of 32 (float32).
    def moving(state):
        i, a, b = state
        mid = (a + b) / 2
        return (i < steps) & (mid != a) & (mid != b)

    def bisect(state):
        i, a, b = state
        mid = (a + b) / 2
        down = _f(p, q, mid, n) <= 0
        return i + 1, jnp.where(down, a, mid), jnp.where(down, mid, b)

    _, _, hi = jax.lax.while_loop(moving, bisect, (0, one, jnp.asarray(n, dt)))
    at_one = _f(p, q, one, n) <= 0
    return jnp.where(at_one, one, hi)


def spectr_rho(p, q, n: int) -> jax.Array:
    r"""K-SEQ's slack factor :math:`\rho^*`: the root in :math:`[1, n]` of

    .. math::
        1 - \big(1 - \beta(\rho)\big)^n = \rho\, \beta(\rho), \qquad
        \beta(\rho) = \sum_x \min\Big(q(x), \frac{p(x)}{\rho}\Big).

    The left side minus the right is non-increasing in :math:`\rho`, non-negative at 1 and
    non-positive at ``n``; :math:`\rho^*` is its smallest root, the smallest :math:`\rho` for
    which K-SEQ's residual is non-negative. It is computed by bisection on :math:`[1, n]` to
    machine precision (at most ``BISECTION_STEPS`` = 64 halvings in float64, 32 in float32,
    stopping once the midpoint rounds to an end: about 26 in float32 for n <= 8), keeping
    the upper end, so the value returned always satisfies
    :math:`1 - (1 - \beta)^n \le \rho\beta` as computed (the rule stays lossless to
    rounding). Cost O(steps * V) with no sort: on CPU at V = 32,000 sorting by :math:`p/q`
    (the exact piecewise solve, :math:`\beta = A + B/\rho` between breakpoints) measured
    several times slower than the bisection. jit-clean for static ``n``; batch with
    ``jax.vmap``.

    Args:
      p: target law, float[V].
      q: draft law, float[V].
      n: number of i.i.d. drafts (static Python int).

    Returns:
      float[] :math:`\rho^* \in [1, n]` (1 when ``n = 1``, ``p == q``, or disjoint supports).

    >>> import jax.numpy as jnp
    >>> round(float(spectr_rho(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]), 2)), 6)  # 1 + 1/sqrt(2)
    1.707107
    >>> p, q = jnp.array([0.6, 0.4, 0.0]), jnp.array([0.2, 0.3, 0.5])
    >>> round(float(spectr_rho(p, q, 2)), 6)
    1.540312

    References:
      Sun, Suresh, Ro, Beirami, Jain, Yu. SpecTr: Fast Speculative Decoding via Optimal
      Transport, NeurIPS 2023 (arXiv 2310.15141), K-SEQ.
    """
    p = _v.as_probs(p, "p")
    q = _v.as_probs(q, "q")
    _v.same_vocab(p, q)
    n = _v.check_n(n)
    dt = _core.float_dtype(p, q)
    return _rho_core(p.astype(dt), q.astype(dt), n)


def spectr_residual(p, q, rho) -> jax.Array:
    r"""K-SEQ's residual law at :math:`\rho = \rho^*`.

    SpecTr's residual (in this package's notation)

    .. math::
        p_{\mathrm{res}}(x) = \frac{p(x) - \min(q(x), p(x)/\rho)\,\frac{1 - (1 - \beta)^n}{\beta}}
        {(1 - \beta)^n}

    simplifies at the root, where :math:`(1 - (1 - \beta)^n)/\beta = \rho^*`, to
    :math:`p_{\mathrm{res}} = (p - \rho^* q)_+ / (1 - \rho^* \beta)`: zero on tokens with
    :math:`p \le \rho^* q`, :math:`p - \rho^* q` elsewhere. This form has no cancellation.

    Args:
      p, q: float[V]. rho: float[], from :func:`spectr_rho`.

    Returns:
      float[V], a probability vector (``p`` when the residual has no mass, i.e. when
      rejection has probability zero).

    Raises:
      ValueError: naming ``p``, ``q`` (not probability vectors of one vocabulary) or ``rho``
        (not a finite scalar >= 1), on eager calls.

    >>> import jax.numpy as jnp  # rho* = 1.540312: only token 0 has p > rho* q
    >>> p, q = jnp.array([0.6, 0.4, 0.0]), jnp.array([0.2, 0.3, 0.5])
    >>> spectr_residual(p, q, spectr_rho(p, q, 2)).tolist()
    [1.0, 0.0, 0.0]

    References:
      Sun et al., SpecTr (arXiv 2310.15141), K-SEQ.
    """
    p, q = _v.as_probs(p, "p"), _v.as_probs(q, "q")
    _v.same_vocab(p, q)
    if _v.is_concrete(rho):
        r = np.asarray(rho, dtype=np.float64)
        if r.shape != () or not np.isfinite(r) or r < 1 - 1e-6:
            raise ValueError(f"rho: expected a finite scalar >= 1 (the root of spectr_rho), got {rho!r}")
    dt = _core.float_dtype(p, q)
    return _core.normalize(_residual_weights(p.astype(dt), q.astype(dt), jnp.asarray(rho, dt)))


def _residual_weights(p, q, rho):
    w = jnp.maximum(p - rho * q, 0)
    return jnp.where(jnp.sum(w) == 0, p, w)


@jax.jit
def _verify_core(u, p, q, drafts) -> VerifyResult:
    r"""SpecTr K-SEQ verification of ``n`` i.i.d. drafts, with explicit noise.

    Candidate :math:`x_j` passes iff :math:`u_{j-1}\,\rho^* q(x_j) < p(x_j)`, i.e. with
    probability :math:`\min(1, p(x_j)/(\rho^* q(x_j)))`; the first passing candidate is
    emitted. If all fail, the inverse-CDF draw with :math:`u_n` from

    .. math:: p_{\mathrm{res}} = \mathrm{norm}\big((p - \rho^* q)_+\big)

    (see :func:`spectr_residual`). Acceptance :math:`1 - (1 - \beta(\rho^*))^n`.

    Args:
      u: float[n + 1] i.i.d. U[0, 1).
      p: target law, float[V].
      q: draft law, float[V].
      drafts: int[n].

    Returns:
      :class:`~spectheory.VerifyResult`.

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.6, 0.4, 0.0]), jnp.array([0.2, 0.3, 0.5])
    >>> r = SPECTR.verify_with_uniforms(jnp.array([0.0, 0.99, 0.5]), p, q, jnp.array([2, 1]))
    >>> int(r.token), int(r.index)
    (0, -1)

    References:
      Sun et al., SpecTr (arXiv 2310.15141), K-SEQ.
    """
    n = drafts.shape[0]
    rho = _rho_core(p, q, n)
    ok = _core.accepts(u[:n], _core.take(p, drafts), rho * _core.take(q, drafts))
    # _residual_weights without forming it: rho -> 0 turns (p - rho q)_+ into p
    rho_r = jnp.where(jnp.sum(_core.excess(p, rho * q)) == 0, 0, rho)  # a NaN stays in the weights
    y = _core.sample_weighted(u[n], lambda p, q: _core.excess(p, rho_r * q), (p, q))
    return _multi.first_accepted(ok, drafts, y)


@jax.jit
def _kernel_core(p, q, drafts) -> jax.Array:
    r"""Exact law of K-SEQ's emitted token given i.i.d. drafts.

    .. math::
        K(y \mid \bar x) = \sum_j \Big[\prod_{i<j}(1 - a_i)\Big] a_j\,\delta_{x_j}(y)
        + \Big[\prod_j (1 - a_j)\Big] p_{\mathrm{res}}(y), \qquad
        a_j = \min\Big(1, \frac{p(x_j)}{\rho^* q(x_j)}\Big).

    Args:
      p: target law, float[V]. q: draft law, float[V]. drafts: int[n].

    Returns:
      float[V], a probability vector.

    >>> import jax.numpy as jnp
    >>> SPECTR.kernel(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5]), jnp.array([0, 0])).tolist()
    [1.0, 0.0]

    References:
      Sun et al., SpecTr (arXiv 2310.15141), K-SEQ.
    """
    rho = _rho_core(p, q, drafts.shape[0])
    a = _core.accept_prob(_core.take(p, drafts), rho * _core.take(q, drafts))
    return _multi.sequential_kernel(drafts, a, spectr_residual(p, q, rho))


def spectr_acceptance(p, q, n: int) -> jax.Array:
    r"""Closed-form acceptance rate of K-SEQ with ``n`` i.i.d. drafts.

    .. math:: \alpha = 1 - \big(1 - \beta(\rho^*)\big)^n, \qquad
              \beta(\rho) = \sum_x \min(q(x), p(x)/\rho).

    Args:
      p: target law, float[..., V]. q: draft law, float[..., V]. n: number of drafts.

    Returns:
      float[...].

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.6, 0.4, 0.0]), jnp.array([0.2, 0.3, 0.5])
    >>> round(float(spectr_acceptance(p, q, 2)), 6)
    0.708062

    References:
      Sun et al., SpecTr (arXiv 2310.15141), K-SEQ.
    """
    n = _v.check_n(n)
    return _multi.batched_acceptance(functools.partial(_acceptance_core, n=n), p, q)


@functools.partial(jax.jit, static_argnames="n")
def _acceptance_core(p, q, n):
    rho = _rho_core(p, q, n)
    return 1 - (1 - jnp.clip(_beta(p, q, rho), 0, 1)) ** n


SPECTR = make_verifier(_verify_core, _kernel_core, lambda n: n + 1, acceptance=spectr_acceptance, name="spectr", guard=False)
"""SpecTr's K-SEQ verifier for i.i.d. drafts (``n + 1`` uniforms per position)."""
