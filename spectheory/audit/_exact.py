"""Exact (enumerated) audit of a one-position rule."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import Rule
from spectheory._registry import as_rule as _as_rule

#: Number of draft tuples pushed through the kernel per batch.
CHUNK = 8192


class ExactAudit(NamedTuple):
    """Result of :func:`exact`.

    Attributes:
      output: the exact law of the emitted token, float64[V].
      acceptance: the acceptance rate, :math:`\\sum_{\\bar x} Q(\\bar x) \\sum_{y \\in \\bar x} K(y \\mid \\bar x)`.
      max_error: :math:`\\max_y |\\text{output}(y) - p(y)|`; zero (to rounding) iff the rule is
        lossless for this ``(p, q, n)``.
    """

    output: np.ndarray
    acceptance: float
    max_error: float


@functools.lru_cache(maxsize=128)
def _batched(kernel):
    """One jitted, vmapped copy per kernel, so repeated audits reuse its compilation."""
    return jax.jit(jax.vmap(kernel, in_axes=(None, None, 0)))


def kernel_table(kernel, p, q, tuples, *, host_only: bool = False) -> np.ndarray:
    """Evaluate ``kernel(p, q, drafts)`` for every row of ``tuples`` in float64.

    Args:
      kernel: a :attr:`spectheory.Verifier.kernel`.
      p, q: float[V]; tuples: int[M, n].
      host_only: loop on the host instead of ``jax.vmap`` (for kernels that are not traceable).

    Returns:
      float64[M, V].

    Raises:
      TypeError: naming ``kernel`` when it is not callable.
      ValueError: naming ``p``, ``q`` (not probability vectors of one vocabulary) or
        ``tuples`` (not int[M, n] token ids in ``[0, V)``).
    """
    _v.check_callable(kernel, "kernel")
    with jax.enable_x64(True):
        p64 = _v.as_probs(np.asarray(p, dtype=np.float64) if _v.is_concrete(p) else p, "p")
        q64 = _v.as_probs(np.asarray(q, dtype=np.float64) if _v.is_concrete(q) else q, "q")
        V = _v.same_vocab(p64, q64)
        tuples = np.asarray(_v.as_tokens(np.asarray(tuples), "tuples", V, ndim=2))
        M = tuples.shape[0]
        if host_only:
            return np.stack([np.asarray(kernel(p64, q64, jnp.asarray(t)), dtype=np.float64) for t in tuples])
        fn = _batched(kernel)
        # Pad to a power of two so that audits of laws of different sizes share compilations.
        size = min(CHUNK, 1 << max(M - 1, 0).bit_length())
        out = []
        for start in range(0, M, size):
            chunk = tuples[start:start + size]
            pad = size - chunk.shape[0]
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
            res = np.asarray(fn(p64, q64, jnp.asarray(chunk, dtype=jnp.int32)), dtype=np.float64)
            out.append(res[: size - pad])
        return np.concatenate(out, axis=0)


def exact(rule: Rule, p, q, n: int) -> ExactAudit:
    r"""Exact audit of ``rule``: enumerate its draft law against its kernel, in float64.

    .. math::
        \text{output}(y) = \sum_{\bar x} Q(\bar x)\, K(y \mid \bar x), \qquad
        \text{acceptance} = \sum_{\bar x} Q(\bar x) \sum_{y \in \mathrm{set}(\bar x)} K(y \mid \bar x).

    The rule is lossless for ``(p, q, n)`` iff ``output == p``.

    Args:
      rule: a :class:`spectheory.Rule` (any rule following the contract) or a registered rule name.
      p: target law, float[V].
      q: draft law, float[V].
      n: number of drafts.

    Returns:
      :class:`ExactAudit`.

    >>> import numpy as np, spectheory
    >>> a = exact(spectheory.rule("single"), np.array([0.5, 0.5]), np.array([0.9, 0.1]), 1)
    >>> round(a.acceptance, 12), a.max_error < 1e-15
    (0.6, True)

    References:
      Sun et al., SpecTr: Fast Speculative Decoding via Optimal Transport, NeurIPS 2023
      (arXiv 2310.15141), which views a verifier as a transport plan (kernel).
    """
    rule = _as_rule(rule)
    with jax.enable_x64(True):
        return _exact(rule, p, q, n)


def _exact(rule: Rule, p, q, n: int) -> ExactAudit:
    p = _v.as_probs(p, "p")
    q = _v.as_probs(q, "q")
    V = _v.same_vocab(p, q)
    n = _v.check_n(n, V=V, replacement=rule.drafts.replacement, support=int(np.sum(np.asarray(q) > 0)))
    if not rule.supports(n, V):
        raise ValueError(f"rule {rule.name!r} is not defined for n={n} drafts over V={V} tokens")
    p64 = np.asarray(p, dtype=np.float64)
    # q at its own precision: the law checks it with that dtype's tolerance and computes in float64
    tuples, probs = rule.drafts.law(np.asarray(q), n)
    K = kernel_table(rule.verifier.kernel, p64, q, tuples, host_only=rule.verifier.host_only)
    output = probs @ K
    member = np.zeros_like(K, dtype=bool)
    np.put_along_axis(member, np.asarray(tuples), True, axis=1)
    acceptance = float(probs @ np.sum(np.where(member, K, 0.0), axis=1))
    return ExactAudit(output, acceptance, float(np.max(np.abs(output - p64))))
