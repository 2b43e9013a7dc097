"""Shared fixed test cases: (p, q) pairs including the edge cases every rule must handle."""

import numpy as np


def random_pair(V, seed, zeros=False):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(V) * 0.7)
    q = 0.5 * rng.dirichlet(np.ones(V)) + 0.5 * p
    if zeros and V > 2:
        p[rng.integers(V)] = 0.0
        q[rng.integers(V)] = 0.0
    return p / p.sum(), q / q.sum()


def edge_pairs(V, seed=0):
    """Named (p, q) pairs over V tokens: random, p == q, one-hot p, zeros in q, zeros in p."""
    p, q = random_pair(V, seed)
    cases = {"random": (p, q), "p_eq_q": (q.copy(), q.copy())}
    if V > 1:
        oh = np.zeros(V)
        oh[V - 1] = 1.0
        cases["one_hot_p"] = (oh, q)
        qz = q.copy()
        qz[: V // 2] = 0.0
        cases["q_zeros"] = (p, qz / qz.sum())
        pz = p.copy()
        pz[np.argmax(q)] = 0.0
        cases["p_zeros"] = (pz / pz.sum(), q)
    return cases


def vocab_for(n):
    """A vocabulary size that keeps V**n enumerable and interesting."""
    return 5 if n <= 3 else 4 if n <= 5 else 3
