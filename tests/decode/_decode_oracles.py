"""Independent oracles for the decoding tests: a NumPy warp and the warped target's exact
sequence law, enumerated from a TableLM's tables (no spectheory code on the expected side)."""

from __future__ import annotations

import itertools

import numpy as np

from spectheory.models import TableLM


def np_warp(law, temperature=1.0, top_k=None, top_p=None):
    """The sampling law after temperature, top-k, top-p, from a probability vector (float64)."""
    law = np.asarray(law, np.float64)
    if temperature == 0:
        out = np.zeros_like(law)
        out[np.argmax(law)] = 1.0
        return out
    with np.errstate(divide="ignore"):
        w = np.where(law > 0, np.exp(np.log(np.where(law > 0, law, 1)) / temperature), 0.0)
    w = w / w.sum()
    if top_k is not None and top_k < len(w):
        kth = np.sort(w)[::-1][top_k - 1]
        w = np.where(w >= kth, w, 0.0)
        w = w / w.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-w, kind="stable")
        before = np.cumsum(w[order]) - w[order]
        keep = np.zeros(len(w), bool)
        keep[order[before < top_p]] = True
        w = np.where(keep, w, 0.0)
        w = w / w.sum()
    return w


def warped_sequence_law(model: TableLM, prefix, m, warp):
    """{sequence of m tokens: probability} of sampling the warped model token by token."""
    V = model.vocab_size
    law = {}
    for seq in itertools.product(range(V), repeat=m):
        pr, ctx = 1.0, list(prefix)
        for t in seq:
            pr *= np_warp(model.next_law(ctx), *warp)[t]
            ctx.append(t)
        law[seq] = pr
    return law


def encode(tokens, lengths, V, m):
    """Index of every generated sequence of length m in base V."""
    t = np.asarray(tokens)
    assert np.all(np.asarray(lengths) == m)
    return (t * V ** np.arange(m - 1, -1, -1)).sum(axis=1)


def law_vector(law, m, V=3):
    """The law dict of :func:`warped_sequence_law` as a vector in the order of :func:`encode`."""
    return np.array([law[s] for s in itertools.product(range(V), repeat=m)])
