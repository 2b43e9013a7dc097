"""Independent oracles for the optimal acceptance alpha* (tests only).

Three routes, none of which uses spectheory's own LP:

* brute force over subsets H of the vocabulary: alpha* = min_H [p(H) + 1 - Q(all drafts in H)]
  (Hu et al. 2025, dual of the transport LP);
* the prefix formula for i.i.d. drafts: alpha* = 1 + min_m [P_m - Q_m^n] over prefixes of the
  tokens sorted by p/q (THEORY.md section 4);
* scipy's HiGHS LP solver on the transport LP itself.
"""

import numpy as np
import scipy.optimize


def _subset_masks(V):
    ids = np.arange(1 << V)
    return ((ids[:, None] >> np.arange(V)[None, :]) & 1).astype(bool)  # [2^V, V]


def brute_alpha(p, tuples, probs):
    """min over subsets H of p(H) + 1 - Q(all drafts in H), for an explicit draft law."""
    p = np.asarray(p, dtype=np.float64)
    masks = _subset_masks(p.shape[0])
    pH = masks @ p
    inside = np.all(masks[:, np.asarray(tuples)], axis=2)  # [2^V, M]
    QH = inside @ np.asarray(probs, dtype=np.float64)
    return float(np.min(pH + 1 - QH))


def brute_alpha_iid(p, q, n):
    """Subset formula for i.i.d. drafts: Q(all in H) = q(H)^n."""
    masks = _subset_masks(len(p))
    return float(np.min(masks @ p + 1 - (masks @ q) ** n))


def prefix_alpha_iid(p, q, n):
    """1 + min_m [P_m - Q_m^n] over prefixes sorted by p/q (q = 0 last), m = 0..V."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(q > 0, p / np.where(q > 0, q, 1), np.inf)
    order = np.argsort(r, kind="stable")
    P = np.concatenate([[0.0], np.cumsum(p[order])])
    Q = np.concatenate([[0.0], np.cumsum(q[order])])
    return float(1 + np.min(P - Q**n))


def linprog_alpha(p, tuples, probs):
    """The transport LP solved by HiGHS: max sum_{y in x} pi(x, y), rows Q, columns p."""
    p = np.asarray(p, dtype=np.float64)
    tuples = np.asarray(tuples)
    M, V = tuples.shape[0], p.shape[0]
    member = np.zeros((M, V), dtype=bool)
    np.put_along_axis(member, tuples, True, axis=1)
    c = -member.reshape(-1).astype(float)
    rows = np.kron(np.eye(M), np.ones((1, V)))
    cols = np.kron(np.ones((1, M)), np.eye(V))
    res = scipy.optimize.linprog(c, A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([probs, p]),
                                 bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return float(-res.fun)
