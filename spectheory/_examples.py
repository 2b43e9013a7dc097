"""Built-in target/draft pairs for ``spectheory compare`` and the documentation."""

from __future__ import annotations

import numpy as np


def _softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


def examples() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Named ``(p, q, description)`` pairs, deterministic.

    * ``zipf-flat-draft``: V = 16, p Zipf(1.2), q the same law at temperature 2 (flatter draft).
    * ``zipf-shifted``: V = 16, q puts the Zipf masses on ranks shifted by one.
    * ``llm-like``: V = 64, heavy-tailed (Student-t) target logits, q a tempered and noised copy.
    """
    ranks = np.arange(1, 17, dtype=np.float64)
    zipf = ranks**-1.2
    p1 = zipf / zipf.sum()
    q1 = _softmax(np.log(p1) / 2.0)
    q2 = np.roll(p1, 1)
    rng = np.random.default_rng(1234)
    logits = 2.0 * rng.standard_t(df=3, size=64)
    p3 = _softmax(logits)
    q3 = _softmax(logits / 1.5 + 0.8 * rng.standard_normal(64))
    return {
        "zipf-flat-draft": (p1, q1, "V=16, Zipf(1.2) target, draft at temperature 2"),
        "zipf-shifted": (p1, q2, "V=16, Zipf(1.2) target, draft masses shifted by one rank"),
        "llm-like": (p3, q3, "V=64, Student-t logits, draft tempered (T=1.5) and noised"),
    }
