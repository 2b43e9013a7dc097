r"""The optimal verifier for any draft scheme: an optimal plan of the transport LP (host side).

For a draft scheme with exact law :math:`Q` over draft tuples, the best lossless verifier is
an optimal plan :math:`\pi` of the transportation problem from :math:`Q` to ``p`` with cost 1
when the token is not among the drafts; its acceptance is

.. math:: \alpha^* = \min_{H \subseteq [V]} \big[p(H) + 1 - Q(\text{all drafts in } H)\big].

:func:`optimal_verifier` builds it for any scheme (a host-only verifier of
:func:`spectheory.make_verifier`); :data:`OPTIMAL` is the one for i.i.d. drafts.

References:
  Sun et al., SpecTr (arXiv 2310.15141); Hu et al., Towards Optimal Multi-draft Speculative
  Decoding (arXiv 2502.18779).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Union

import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme, Verifier, VerifyResult, make_verifier, scheme as _scheme
from spectheory.drafts._iid import IID

#: Largest transport LP solved: (number of draft tuples of positive probability) x V variables.
MAX_LP_VARIABLES = 1_000_000


class _Plan(NamedTuple):
    rows: dict  # draft tuple (Python ints) -> row of `kernel`
    kernel: np.ndarray  # float64[M, V], K(y | tuple)
    value: float  # optimal acceptance


def _solve(p: np.ndarray, tuples: np.ndarray, probs: np.ndarray) -> _Plan:
    import ot  # POT, host-side exact network simplex

    M, V = tuples.shape[0], p.shape[-1]
    if M * V > MAX_LP_VARIABLES:
        raise ValueError(
            f"optimal verifier: the transport LP has {M} draft tuples x {V} tokens = {M * V} variables, "
            f"above the limit MAX_LP_VARIABLES = {MAX_LP_VARIABLES}; use a smaller vocabulary or fewer drafts"
        )
    member = np.zeros((M, V), dtype=bool)
    np.put_along_axis(member, tuples, True, axis=1)
    cost = np.where(member, 0.0, 1.0)
    a = probs / probs.sum()
    b = p / p.sum()
    plan, log = ot.emd(a, b, cost, numItermax=max(100_000, 50 * M * V), log=True)
    if log.get("warning"):
        raise RuntimeError(f"optimal verifier: the network simplex did not converge ({log['warning']})")
    plan = np.maximum(np.asarray(plan, dtype=np.float64), 0.0)
    kernel = plan / a[:, None]
    rows = {tuple(int(x) for x in t): i for i, t in enumerate(tuples)}
    return _Plan(rows, kernel, float(np.sum(plan[member])))


@functools.lru_cache(maxsize=256)
def _plan_cached(scheme: DraftScheme, p_bytes: bytes, q_bytes: bytes, q_dtype: str, n: int) -> _Plan:
    p = np.frombuffer(p_bytes, dtype=np.float64)
    q = np.frombuffer(q_bytes, dtype=q_dtype)  # the law checks q at its own precision, computes in float64
    tuples, probs = scheme.law(q, n)
    return _solve(p, np.asarray(tuples, dtype=np.int64), np.asarray(probs, dtype=np.float64))


def _plan(scheme: DraftScheme, p, q, n: int) -> _Plan:
    p64 = np.ascontiguousarray(np.asarray(p, dtype=np.float64))
    q_np = np.ascontiguousarray(np.asarray(q))
    V = p64.shape[-1]
    n = _v.check_n(n, V=V, replacement=scheme.replacement, support=int(np.sum(q_np > 0)))
    if not scheme.supports(n, V):
        raise ValueError(f"n: draft scheme {scheme.name!r} is not defined for n={n} drafts over V={V} tokens")
    return _plan_cached(scheme, p64.tobytes(), q_np.tobytes(), q_np.dtype.str, n)


def _sample_index_np(u: float, w: np.ndarray) -> int:
    """NumPy twin of :func:`spectheory._core.sample_index` (same rule, host side)."""
    c = np.cumsum(w)
    idx = int(np.sum(c <= u * c[-1]))
    last_pos = int(np.flatnonzero(w > 0)[-1])
    return min(idx, last_pos)


def optimal_verifier(scheme: Union[DraftScheme, str] = IID) -> Verifier:
    r"""The optimal lossless verifier for a draft scheme: an optimal plan of the transport LP.

    For the scheme's exact draft law :math:`Q` over ordered tuples :math:`\bar x` (``n``
    drafts), solve

    .. math::
        \max_{\pi \ge 0} \sum_{\bar x} \sum_{y \in \bar x} \pi(\bar x, y)
        \quad \text{s.t.} \quad \sum_y \pi(\bar x, y) = Q(\bar x), \quad
        \sum_{\bar x} \pi(\bar x, y) = p(y),

    a transportation problem with cost 1 when :math:`y \notin \bar x` and 0 otherwise, solved
    exactly by POT's network simplex (``ot.emd``); the kernel is
    :math:`K(y \mid \bar x) = \pi(\bar x, y) / Q(\bar x)` (``p`` for tuples of zero
    probability). Its acceptance is the optimum

    .. math:: \alpha^* = \min_{H \subseteq [V]} \big[p(H) + 1 - Q(\text{all drafts in } H)\big].

    The plan is cached per ``(scheme, p, q, n)``. Host side only: the verifier is built by
    :func:`spectheory.make_verifier` with ``host_only=True``, so it has the front door of every
    verifier (the same ``ValueError`` on bad ``p``, ``q``, ``drafts`` or uniforms) and refuses
    traced inputs (``jax.jit``, ``jax.vmap``) with a ``TypeError``. Small vocabularies
    only: the LP has ``M x V`` variables with ``M`` the number of draft tuples (``V**n`` for
    i.i.d. drafts); above :data:`MAX_LP_VARIABLES` a ``ValueError`` is raised.

    The returned :class:`~spectheory.Verifier` has ``verify(key, p, q, drafts)``,
    ``kernel(p, q, drafts) -> float[V]`` (a NumPy array, in the inputs' floating dtype),
    ``verify_with_uniforms(u float[1], p, q, drafts)`` (inverse-CDF draw from the kernel row
    with ``u[0]``) and ``acceptance(p, q, n) -> float`` (the LP optimum). ``p``, ``q``:
    float[V]; ``drafts``: int[n]. A tuple outside the scheme's support gets the kernel ``p``.

    Args:
      scheme: the :class:`~spectheory.DraftScheme` whose law the verifier assumes, or the name
        of a registered scheme (``"iid"``, ``"without_replacement"``, ``"greedy"``, ``"hub"``).

    Returns:
      :class:`~spectheory.Verifier`.

    >>> import numpy as np
    >>> ver = optimal_verifier()
    >>> p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    >>> round(ver.acceptance(p, q, 2), 12)  # min over H: H = {0} gives 0.5 + 1 - 0.81
    0.69
    >>> K = optimal_verifier("iid").kernel(p, q, np.array([1, 1]))  # Q(1, 1) = 0.01 < p(1): kept
    >>> [round(float(x), 12) for x in K]
    [0.0, 1.0]

    References:
      Sun et al., SpecTr: Fast Speculative Decoding via Optimal Transport, NeurIPS 2023
      (arXiv 2310.15141). Hu, Zheng, Luo, Zhang, Huang. Towards Optimal Multi-draft
      Speculative Decoding, ICLR 2025 (arXiv 2502.18779). Flamary et al., POT: Python Optimal
      Transport, JMLR 2021.
    """

    scheme = _scheme(scheme)

    def kernel(p, q, drafts) -> np.ndarray:
        """The row of the optimal plan for ``drafts``: float[V] in the dtype of ``p``."""
        p64 = p.astype(np.float64)
        plan = _plan(scheme, p64, q, drafts.shape[0])
        row = plan.rows.get(tuple(drafts.tolist()))
        K = plan.kernel[row] if row is not None else p64 / p64.sum()
        return K.astype(p.dtype)

    def core(u, p, q, drafts) -> VerifyResult:
        """Inverse-CDF draw with ``u[0]`` from the kernel row (host side)."""
        K = kernel(p, q, drafts).astype(np.float64)
        token = _sample_index_np(float(u[0]), K)
        hit = np.flatnonzero(drafts == token)
        index = int(hit[0]) if hit.size else -1
        return VerifyResult(np.int32(token), np.int32(index))

    def acceptance(p, q, n: int) -> float:
        """The LP optimum :math:`\\alpha^*` for ``n`` drafts of the scheme."""
        p = _v.as_probs(p, "p")
        q = _v.as_probs(q, "q")
        _v.same_vocab(p, q)
        return _plan(scheme, p, q, n).value

    return make_verifier(core, kernel, lambda n: 1, acceptance=acceptance, name=f"optimal[{scheme.name}]",
                         host_only=True)


OPTIMAL = optimal_verifier(IID)
"""The optimal (transport-LP) verifier for i.i.d. drafts; host side, small ``V`` only."""
