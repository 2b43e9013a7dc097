"""The exact optimal-transport LP of multi-draft verification (private; host only)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spectheory._validation import check_count
from spectheory.bounds._subset import check_tuples, validate_draft_law

__all__ = ["LPAcceptance", "lp_acceptance", "collapse_draft_sets"]


class LPAcceptance(NamedTuple):
    """Solution of the acceptance LP with its dual certificate.

    Attributes:
      value: optimal acceptance rate α*. # float
      plan: optimal coupling π(x̄, y) of draft tuples and output tokens. # shape=[M, V]
      row_duals: ``f[M]``, one per draft tuple. # shape=[M]
      col_duals: ``g[V]``, one per token. # shape=[V]

    The duals are those of the maximisation: ``f[x̄] + g[y] >= [y in x̄]`` for all pairs, equality
    on the support of ``plan``, and ``value == f @ probs + g @ p``.
    """

    value: float
    plan: np.ndarray
    row_duals: np.ndarray
    col_duals: np.ndarray


def collapse_draft_sets(tuples: np.ndarray, V: int):
    r"""Group draft tuples by their (unordered, de-duplicated) token set.

    The LP's objective depends on a tuple only through :math:`\mathrm{set}(\bar x)`, so rows
    with the same set can be merged without changing the optimum,

    .. math::

        Q(S) = \sum_{\bar x:\ \mathrm{set}(\bar x) = S} Q(\bar x), \qquad
        \pi(\bar x, y) = \pi(S, y)\, \frac{Q(\bar x)}{Q(S)},

    and a plan on the merged rows splits back proportionally (dual values are shared).

    Args:
      tuples: int[M, n] token ids.
      V: vocabulary size.

    Returns:
      ``(inverse int[M], members bool[U, V])``: ``inverse[i]`` is the set index of tuple ``i`` and
      ``members[u, y]`` says whether token ``y`` belongs to set ``u``.

    Raises:
      ValueError: ``V`` not a positive int, ``tuples`` not a non-empty int array of shape
        ``[M, n]`` with ids in ``[0, V)``.
      TypeError: traced ``tuples`` (host only).

    Example:
      >>> import numpy as np
      >>> from spectheory.bounds import collapse_draft_sets
      >>> inverse, members = collapse_draft_sets(np.array([[0, 1], [1, 0], [2, 2]]), 3)
      >>> inverse.tolist(), members.astype(int).tolist()
      ([1, 1, 0], [[0, 0, 1], [1, 1, 0]])

    References:
      Sun et al. SpecTr. NeurIPS 2023, arXiv:2310.15141.
    """
    V = check_count(V, "V")
    t = np.sort(check_tuples(tuples, V), axis=1)
    if t.shape[1] > 1:
        dup = np.zeros_like(t, dtype=bool)
        dup[:, 1:] = t[:, 1:] == t[:, :-1]
        t = np.sort(np.where(dup, -1, t), axis=1)
    uniq, inverse = np.unique(t, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    members = np.zeros((uniq.shape[0], V), dtype=bool)
    rows = np.repeat(np.arange(uniq.shape[0]), uniq.shape[1])
    cols = uniq.reshape(-1)
    keep = cols >= 0
    members[rows[keep], cols[keep]] = True
    return inverse, members


def _solve_pot(a, b, A, num_iter_max):
    import ot

    M = np.ascontiguousarray(1.0 - A.astype(np.float64))
    G, log = ot.emd(a, b, M, numItermax=num_iter_max, log=True)
    if log.get("result_code", 1) != 1 or log.get("warning"):
        raise RuntimeError(f"POT emd did not reach an optimal solution: {log.get('warning')}")
    # min-cost duals u + v <= M  ->  acceptance duals f = 1 - u, g = -v with f + g >= A.
    return G, 1.0 - np.asarray(log["u"]), -np.asarray(log["v"])


def _solve_cvxpy(a, b, A, solver_name):
    import cvxpy as cp

    U, V = A.shape
    X = cp.Variable((U, V), nonneg=True)
    cons = [cp.sum(X, axis=1) == a, cp.sum(X, axis=0) == b]
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(A.astype(np.float64), X))), cons)
    if solver_name is None:
        solver_name = "HIGHS" if "HIGHS" in cp.installed_solvers() else None
    opts = {"output_flag": False} if solver_name == "HIGHS" else {}
    prob.solve(solver=solver_name, **opts)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"cvxpy did not solve the acceptance LP: status {prob.status}")
    # For a maximisation cvxpy's equality duals already satisfy f + g >= A.
    G = np.maximum(np.asarray(X.value), 0.0)
    return G, np.asarray(cons[0].dual_value).reshape(U), np.asarray(cons[1].dual_value).reshape(V)


def lp_acceptance(p, tuples, probs, solver: str = "pot", *, collapse: bool = True,
                  num_iter_max: int = 10_000_000, cvxpy_solver: str | None = None) -> LPAcceptance:
    r"""Optimal acceptance rate by solving the transport LP exactly.

    .. math::

        \alpha^* = \max_{\pi \ge 0} \sum_{\bar x, y} [y \in \bar x]\, \pi(\bar x, y)
        \quad \text{s.t.} \quad \sum_y \pi(\bar x, y) = Q(\bar x), \quad
        \sum_{\bar x} \pi(\bar x, y) = p(y).

    It is a transportation problem with cost :math:`1 - [y \in \bar x]`, so POT's network
    simplex (``ot.emd``) solves it exactly; ``solver="cvxpy"`` writes it as an explicit LP
    (HiGHS when installed). The dual is
    :math:`\min f \cdot Q + g \cdot p` s.t. :math:`f_{\bar x} + g_y \ge [y \in \bar x]`; by total
    unimodularity it has a 0/1 optimum (:math:`g = 1_H`), which is :func:`subset_bound`.
    Tuples with the same unordered token set are merged before solving (exact, see
    :func:`collapse_draft_sets`) and the plan is split back proportionally to ``probs``.

    Args:
      p: target law, float[V].
      tuples: draft tuples, int[M, n] with ids in ``[0, V)``.
      probs: probability of each tuple, float[M], summing to one.
      solver: ``"pot"`` or ``"cvxpy"``.
      collapse: merge tuples with equal token sets before solving (default ``True``).
      num_iter_max: iteration cap for ``ot.emd``.
      cvxpy_solver: solver name passed to cvxpy (default HiGHS when installed).

    Returns:
      :class:`LPAcceptance` ``(value, plan[M, V], row_duals[M], col_duals[V])``.

    Raises:
      ValueError: malformed inputs, an unknown solver, or bad options.
      TypeError: traced arguments (host only).
      RuntimeError: the solver did not report an optimal solution.

    Example:
      >>> import numpy as np
      >>> from spectheory.bounds import lp_acceptance
      >>> p = np.array([0.5, 0.3, 0.2]); q = np.array([0.2, 0.3, 0.5])
      >>> tuples = np.array([[i, j] for i in range(3) for j in range(3)])  # two iid drafts
      >>> probs = np.array([q[i] * q[j] for i, j in tuples])
      >>> res = lp_acceptance(p, tuples, probs)
      >>> round(res.value, 6), res.plan.shape
      (0.86, (9, 3))

    References:
      Sun, Suresh, Ro, Beirami, Jain, Yu. SpecTr: Fast Speculative Decoding via Optimal
      Transport. NeurIPS 2023, arXiv:2310.15141.
      Hu et al. Towards Optimal Multi-draft Speculative Decoding. ICLR 2025, arXiv:2502.18779.
      Flamary et al. POT: Python Optimal Transport. JMLR 22(78), 2021.
    """
    if solver not in ("pot", "cvxpy"):
        raise ValueError(f"solver: expected 'pot' or 'cvxpy', got {solver!r}")
    if not isinstance(collapse, bool):
        raise ValueError(f"collapse: expected a bool, got {collapse!r}")
    num_iter_max = check_count(num_iter_max, "num_iter_max")
    if cvxpy_solver is not None and not isinstance(cvxpy_solver, str):
        raise ValueError(f"cvxpy_solver: expected a solver name or None, got {cvxpy_solver!r}")
    p, t, w = validate_draft_law(p, tuples, probs)
    V = p.size
    M = t.shape[0]
    if collapse:
        inverse, A = collapse_draft_sets(t, V)
    else:
        inverse = np.arange(M)
        A = np.zeros((M, V), dtype=bool)
        A[np.repeat(np.arange(M), t.shape[1]), t.reshape(-1)] = True
    a_raw = np.bincount(inverse, weights=w, minlength=A.shape[0])
    a = a_raw / a_raw.sum()
    b = p / p.sum()
    if solver == "pot":
        G, f, g = _solve_pot(a, b, A, num_iter_max)
    else:
        G, f, g = _solve_cvxpy(a, b, A, cvxpy_solver)
    grp = a_raw[inverse]
    share = np.where(grp > 0, w / np.where(grp > 0, grp, 1.0), 0.0)
    plan = G[inverse] * share[:, None]
    value = float(np.sum(G * A))
    return LPAcceptance(value, plan, f[inverse], g)
