"""Exact audit of chain verification over tabular models."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import ChainVerifier
from spectheory.models._table import TableLM, check_ids, check_table_lm
from spectheory.verify._chain import TOKEN


class ChainAudit(NamedTuple):
    """Result of :func:`exact_chain`.

    Attributes:
      expected_accepted: exact expected number of accepted draft tokens per call.
      max_error: largest absolute difference, over all sequences ``z`` of length
        ``gamma + 1``, between the probability that the emitted tokens (continued by the
        target) start with ``z`` and the target's probability of ``z``.
      emitted: the exact law of the emitted token sequence, ``{tuple: prob}``.
    """

    expected_accepted: float
    max_error: float
    emitted: dict


def _draft_sequences(draft: TableLM, prefix: tuple, gamma: int):
    """All draft chains of positive probability with their probabilities (DFS)."""
    out = []

    def rec(seq, prob):
        if len(seq) == gamma:
            out.append((tuple(seq), prob))
            return
        law = draft.next_law(prefix + tuple(seq))
        for t in np.flatnonzero(law > 0):
            rec(seq + [int(t)], prob * law[t])

    rec([], 1.0)
    return out


def sequence_error(target: TableLM, emitted: dict, length: int, *, prefix: Sequence[int] = ()) -> float:
    r"""Largest error of an emitted-sequence law against the target, at sequence level.

    With :math:`A(()) = 0` and :math:`A(s\,t) = A(s)\,P(t \mid s) + E(s\,t)` (the emitted
    sequence :math:`E`, continued by the target), returns
    :math:`\max_{|z| = \text{length}} |A(z) - P(z)|`; zero iff emitting then continuing with the
    target has the target's law up to ``length`` tokens.

    Args:
      target: the target model. emitted: ``{tokens (tuple): probability}`` with every key of
        length ``1..length``. length: the horizon. prefix: the context.

    Returns:
      the largest absolute error (float).

    >>> lm = TableLM.context_free([0.5, 0.5])
    >>> sequence_error(lm, {(0,): 0.5, (1,): 0.5}, 2), sequence_error(lm, {(0,): 1.0}, 1)
    (0.0, 0.5)

    References:
      Leviathan et al. 2023 (arXiv 2211.17192), Appendix A (losslessness of the emitted
      sequence); Sun et al. 2025 (arXiv 2403.10444), Sec. 2 (valid verification).
    """
    check_table_lm(target, "target")
    length = _v.check_count(length, "length")
    V = target.vocab_size
    prefix = check_ids(prefix, V, "prefix")
    if not isinstance(emitted, dict):
        raise TypeError(f"emitted: expected a dict of sequences (tuples of ids) to probabilities, got "
                        f"{type(emitted).__name__}")
    for s, w in emitted.items():
        if not isinstance(s, tuple) or any(isinstance(t, bool) or not isinstance(t, (int, np.integer))
                                           or not 0 <= t < V for t in s):
            raise ValueError(f"emitted: keys must be tuples of token ids in [0, {V}), got {s!r}")
        # (an enumerated law may carry rounding below zero: -1e-12 is the audits' float64 slack)
        if not (isinstance(w, (int, float, np.integer, np.floating)) and np.isfinite(w) and w >= -1e-12):
            raise ValueError(f"emitted: probabilities must be finite and >= 0, got {w!r} for {s!r}")
    max_err = 0.0
    stack = [((), 0.0, 1.0)]
    while stack:
        s, a, pt = stack.pop()
        if len(s) == length:
            max_err = max(max_err, abs(a - pt))
            continue
        law = target.next_law(prefix + s)
        for t in range(V):
            child = s + (t,)
            stack.append((child, a * law[t] + emitted.get(child, 0.0), pt * law[t]))
    return float(max_err)


def exact_chain(target: TableLM, draft: TableLM, gamma: int, verifier: ChainVerifier = TOKEN, *,
                prefix: Sequence[int] = ()) -> ChainAudit:
    r"""Exact audit of one call of chain verification between two :class:`TableLM`.

    Enumerates every draft chain :math:`x_{1..\gamma}` (probability
    :math:`\prod_i q(x_i \mid x_{<i})`) and the verifier's exact joint law of (number
    accepted :math:`k`, next token :math:`y`), which gives the law :math:`E` of the emitted
    sequence :math:`x_{1..k}\,y`. Losslessness means that the emitted sequence continued by the
    target has the target's law: with :math:`A(()) = 0` and
    :math:`A(s\,t) = A(s)\,P(t \mid s) + E(s\,t)`, we need :math:`A(z) = P(z)` for every
    :math:`z` of length :math:`\gamma + 1`.

    Args:
      target: the target model.
      draft: the draft model (same vocabulary).
      gamma: number of drafted tokens (>= 0).
      verifier: the :class:`~spectheory.ChainVerifier` audited, e.g.
        :data:`spectheory.verify.TOKEN` (token by token, the default) or
        :data:`spectheory.verify.BLOCK` (block verification); its ``kernel`` gives the joint
        law of (number accepted, next token) for each draft chain.
      prefix: the context both models condition on.

    Returns:
      :class:`ChainAudit`.

    Raises:
      ValueError: on a vocabulary mismatch, a bad ``gamma``, or a ``verifier`` that is not a
        :class:`~spectheory.ChainVerifier`.

    >>> from spectheory.verify import BLOCK
    >>> target, draft = TableLM.context_free([0.5, 0.3, 0.2]), TableLM.context_free([0.2, 0.3, 0.5])
    >>> a = exact_chain(target, draft, 2)  # alpha = sum min(p, q) = 0.7: E = 0.7 + 0.7**2
    >>> round(a.expected_accepted, 12), a.max_error < 1e-12
    (1.19, True)
    >>> exact_chain(target, draft, 2, BLOCK).max_error < 1e-12
    True

    References:
      Leviathan et al. 2023 (arXiv 2211.17192); Sun et al., Block Verification Accelerates
      Speculative Decoding, ICLR 2025 (arXiv 2403.10444).
    """
    check_table_lm(target, "target")
    check_table_lm(draft, "draft")
    gamma = _v.check_count(gamma, "gamma", minimum=0)
    if not isinstance(verifier, ChainVerifier):
        raise ValueError(f"verifier: expected a spectheory.ChainVerifier (e.g. spectheory.verify.TOKEN or BLOCK), "
                         f"got {verifier!r}")
    if target.vocab_size != draft.vocab_size:
        raise ValueError("target and draft must share the vocabulary")
    V = target.vocab_size
    prefix = check_ids(prefix, V, "prefix")
    seqs = _draft_sequences(draft, prefix, gamma)
    drafts = np.array([s for s, _ in seqs], dtype=np.int32).reshape(len(seqs), gamma)
    qprob = np.array([w for _, w in seqs])
    P = np.stack([target.laws(prefix, s) for s, _ in seqs])
    Q = np.stack([draft.laws(prefix, s[:-1]) for s, _ in seqs]) if gamma else np.zeros((len(seqs), 0, V))
    with jax.enable_x64(True):
        K = np.asarray(jax.jit(jax.vmap(verifier.kernel))(jnp.asarray(P), jnp.asarray(Q), jnp.asarray(drafts)))
    emitted: dict[tuple, float] = {}
    for m, (s, w) in enumerate(seqs):
        for k in range(gamma + 1):
            for y in np.flatnonzero(K[m, k] != 0):
                key = s[:k] + (int(y),)
                emitted[key] = emitted.get(key, 0.0) + w * K[m, k, y]
    expected = float(np.sum(qprob[:, None] * K.sum(axis=2) * np.arange(gamma + 1)[None, :]))

    max_err = sequence_error(target, emitted, gamma + 1, prefix=prefix)
    return ChainAudit(expected, float(max_err), emitted)
