"""Model-agnostic checks of the CausalLM contract against a full-recompute oracle.

Every check drives an adapter through a scenario and compares each returned logit row with
``reference(sequence)[-1]``: the logits a fresh, cache-free forward pass gives for the row's
committed tokens plus the path to the scored token. A ``Mirror`` tracks what every row should
contain as plain Python lists, independently of the adapter's cache.
"""

from __future__ import annotations

import numpy as np

from spectheory.models import chain_parents, tree_paths


class Mirror:
    """The committed tokens each row should hold, and the oracle to compare against."""

    def __init__(self, lm, reference, batch, rng, *, atol, rtol, vocab=None):
        self.lm, self.reference, self.rng = lm, reference, rng
        self.rows = [[] for _ in range(batch)]
        self.atol, self.rtol = atol, rtol
        self.V = vocab or lm.vocab_size
        self.cache = lm.init_cache(batch)

    def tokens(self, shape):
        return self.rng.integers(0, self.V, size=shape)

    def check_lengths(self):
        np.testing.assert_array_equal(np.asarray(self.lm.lengths(self.cache)),
                                      [len(r) for r in self.rows])

    def chain(self, toks, valid=None):
        """Chain-mode call; check every valid row against the oracle; commit in the mirror."""
        toks = np.asarray(toks)
        valid = np.ones(toks.shape, bool) if valid is None else np.asarray(valid, bool)
        logits, self.cache = self.lm.logits(toks, self.cache, valid=valid)
        logits = np.asarray(logits)
        assert logits.shape == toks.shape + (self.lm.vocab_size,)
        assert np.issubdtype(logits.dtype, np.floating)
        for b in range(toks.shape[0]):
            new = [int(t) for t, v in zip(toks[b], valid[b]) if v]
            if not new:
                continue
            ref = self.reference(self.rows[b] + new)[-len(new):]
            np.testing.assert_allclose(logits[b][valid[b]], ref, atol=self.atol, rtol=self.rtol)
            self.rows[b] += new
        self.check_lengths()
        return logits

    def tree(self, toks, parents, valid=None):
        """Tree-mode call; check every valid node against prefix + its root path."""
        toks = np.asarray(toks)
        B, T = toks.shape
        valid = np.ones(toks.shape, bool) if valid is None else np.asarray(valid, bool)
        logits, self.cache = self.lm.logits(toks, self.cache, valid=valid, parents=parents)
        logits = np.asarray(logits)
        par = np.broadcast_to(np.asarray(parents), (B, T))
        for b in range(B):
            for i, path in enumerate(tree_paths(par[b])):
                if valid[b, i]:
                    ref = self.reference(self.rows[b] + [int(t) for t in toks[b, path]])[-1]
                    np.testing.assert_allclose(logits[b, i], ref, atol=self.atol, rtol=self.rtol)
        self.check_lengths()  # tree nodes are tentative
        self._last_tree = (toks, par)
        return logits

    def commit_random_paths(self):
        """Commit, per row, a random root path of the last tree (possibly empty)."""
        toks, par = self._last_tree
        B, T = toks.shape
        keep = np.zeros((B, T), bool)
        for b in range(B):
            node = int(self.rng.integers(-1, T))  # -1: keep nothing
            path = tree_paths(par[b])[node] if node >= 0 else []
            keep[b, path] = True
            self.rows[b] += [int(t) for t in toks[b, path]]
        self.cache = self.lm.commit(self.cache, keep)
        self.check_lengths()
        return keep

    def rollback(self, lengths):
        self.cache = self.lm.rollback(self.cache, np.asarray(lengths))
        self.rows = [r[:n] for r, n in zip(self.rows, lengths)]
        self.check_lengths()


# Few distinct call widths, so that a compiled adapter (JaxCausalLM) compiles few programs.
PREFILL = 7  # prompt width (left padding)
WIDE = 4  # γ + 1 for γ = 3 drafts; also the tree size


def ragged_prefill(m: Mirror, lengths):
    """Left-padded prompts of the given lengths (<= PREFILL) in one chain call."""
    B, T = len(lengths), PREFILL
    valid = np.arange(T)[None, :] >= T - np.asarray(lengths)[:, None]
    m.chain(np.where(valid, m.tokens((B, T)), -1), valid)


def check_incremental(m: Mirror, steps=3):
    """Incremental calls of varying widths (with padding holes) equal full recompute."""
    ragged_prefill(m, [3, 7, 1][: len(m.rows)])
    for T in [1, WIDE, WIDE][:steps]:
        valid = m.rng.random((len(m.rows), T)) < 0.8
        m.chain(m.tokens((len(m.rows), T)), valid)


def check_speculative_rollback(m: Mirror, gamma=3, rounds=4):
    """Rounds of 'score pending + γ drafts, accept a random number per row, roll back'."""
    B = len(m.rows)
    ragged_prefill(m, [5, 2, 4][:B])
    for _ in range(rounds):
        before = np.array([len(r) for r in m.rows])
        m.chain(m.tokens((B, gamma + 1)))
        accepted = m.rng.integers(0, gamma + 1, size=B)
        m.rollback(before + 1 + accepted)
    # roll back across several calls, one row to empty
    m.rollback([0] + [max(0, len(r) - 5) for r in m.rows[1:]])
    m.chain(m.tokens((B, WIDE)))


def random_parents(rng, T):
    """A random topologically ordered forest on T nodes (node 0 is a root)."""
    return np.array([-1] + [int(rng.integers(-1, i)) if rng.random() < 0.2 else
                            int(rng.integers(0, i)) for i in range(1, T)], dtype=np.int32)


def check_tree(m: Mirror, T=WIDE, rounds=2, per_row=False):
    """Tree calls score every node as its own root path; commit keeps a path; the next call
    sees exactly the committed path (and discards uncommitted nodes)."""
    B = len(m.rows)
    ragged_prefill(m, [4, 6, 2][:B])
    for _ in range(rounds):
        parents = (np.stack([random_parents(m.rng, T) for _ in range(B)]) if per_row
                   else random_parents(m.rng, T))
        m.tree(m.tokens((B, T)), parents)
        m.commit_random_paths()
        m.chain(m.tokens((B, 1)))
    # an uncommitted tree is discarded by the next call
    m.tree(m.tokens((B, T)), random_parents(m.rng, T))
    m.chain(m.tokens((B, WIDE)))
    # tree mode on a chain scores what chain mode scores
    toks = m.tokens((B, T))
    m.tree(toks, chain_parents(T))
    m.cache = m.lm.commit(m.cache, np.ones((B, T), bool))
    for b in range(B):
        m.rows[b] += [int(t) for t in toks[b]]
    m.check_lengths()
    m.chain(m.tokens((B, 1)))


def check_padded_tree(m: Mirror):
    """Per-row trees of different sizes, padded with invalid nodes."""
    B = len(m.rows)
    ragged_prefill(m, [3, 5, 2][:B])
    parents = np.array([[-1, 0, 0, 1], [-1, 0, 1, 0]][:B], dtype=np.int32)
    valid = np.array([[1, 1, 1, 1], [1, 1, 0, 0]][:B], bool)
    m.tree(np.where(valid, m.tokens((B, 4)), -1), parents, valid)
    keep = np.array([[1, 1, 0, 1], [1, 1, 0, 0]][:B], bool)
    toks = m._last_tree[0]
    m.cache = m.lm.commit(m.cache, keep)
    for b in range(B):
        m.rows[b] += [int(t) for t in toks[b][keep[b]]]
    m.check_lengths()
    m.chain(m.tokens((B, WIDE)))
