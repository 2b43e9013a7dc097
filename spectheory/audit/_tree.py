"""Exact audit of tree verification over tabular models (sequence level)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory._registry import Rule
from spectheory.audit._chain import sequence_error
from spectheory.audit._exact import kernel_table
from spectheory.drafts import WITHOUT_REPLACEMENT
from spectheory.models._table import TableLM
from spectheory.sampling._beam import sequence_law
from spectheory.trees._verify import _as_rule
from spectheory.models._table import check_table_lm


class TreeAudit(NamedTuple):
    """Result of :func:`exact_tree`.

    Attributes:
      expected_accepted: exact expected number of accepted draft tokens per call.
      max_error: largest absolute error, over all sequences of length ``depth + 1``, between
        the law of the emitted tokens continued by the target and the target's law.
      emitted: the exact law of the emitted token sequence, ``{tuple: prob}``.
      num_trees: number of distinct (node, children) configurations enumerated.
    """

    expected_accepted: float
    max_error: float
    emitted: dict
    num_trees: int


class _Kernels:
    """Node kernels evaluated in float64: one jitted, vmapped kernel per number of drafts
    (batches padded to a power of two to bound recompilation), single tuples cached on
    (path, children tuple)."""

    def __init__(self, r: Rule, target: TableLM, draft: TableLM, prefix: tuple):
        self.r, self.target, self.draft, self.prefix = r, target, draft, prefix
        self.cache: dict = {}
        self.fn = None if r.verifier.host_only else jax.jit(jax.vmap(r.verifier.kernel, in_axes=(None, None, 0)))

    def table(self, path: tuple, tuples: np.ndarray) -> np.ndarray:
        p = self.target.next_law(self.prefix + path)
        q = self.draft.next_law(self.prefix + path)
        tuples = np.asarray(tuples)
        if self.fn is None:
            return kernel_table(self.r.verifier.kernel, p, q, tuples, host_only=True)
        M = tuples.shape[0]
        size = 1 << max(M - 1, 0).bit_length()
        padded = np.concatenate([tuples, np.repeat(tuples[:1], size - M, axis=0)]) if size > M else tuples
        with jax.enable_x64(True):
            out = self.fn(jnp.asarray(p), jnp.asarray(q), jnp.asarray(padded, dtype=jnp.int32))
        return np.asarray(out, dtype=np.float64)[:M]

    def one(self, path: tuple, kids: tuple) -> np.ndarray:
        key = (path, kids)
        if key not in self.cache:
            self.cache[key] = self.table(path, np.array([kids], dtype=np.int64))[0]
        return self.cache[key]


def _add(out: dict, key: tuple, w: float) -> None:
    out[key] = out.get(key, 0.0) + float(w)


def _fixed_tree_law(kern: _Kernels, branching: tuple, V: int) -> tuple[dict, int]:
    """Emitted law for trees whose subtrees are drawn independently given their path, the
    children of a node by the node rule's own scheme (``children_law``: fewer children where a
    scheme drawing distinct tokens meets a smaller support)."""
    scheme = kern.r.drafts
    D = len(branching)
    memo: dict = {}
    count = [0]

    def rec(path: tuple) -> dict:
        if path in memo:
            return memo[path]
        d = len(path)
        out: dict = {}
        if d == D:
            p = kern.target.next_law(kern.prefix + path)
            for y in np.flatnonzero(p > 0):
                out[(int(y),)] = float(p[y])
            memo[path] = out
            return out
        q = kern.draft.next_law(kern.prefix + path)
        tuples, probs = scheme.children_law(q, branching[d])
        m = int(tuples.shape[1])
        if not kern.r.supports(m, V):
            raise ValueError(f"branching: rule {kern.r.name!r} is not defined for {m} drafts over V={V} tokens, "
                             f"but the node after {path} gets {m} children (branching[{d}] = {branching[d]})")
        count[0] += len(tuples)
        K = kern.table(path, tuples)
        for tup, w, row in zip(tuples, probs, K):
            for y in np.flatnonzero(row > 0):
                mass = w * row[y]
                if int(y) in set(int(t) for t in tup):
                    for cont, pr in rec(path + (int(y),)).items():
                        _add(out, (int(y),) + cont, mass * pr)
                else:
                    _add(out, (int(y),), mass)
        memo[path] = out
        return out

    return rec(()), count[0]


def _beam_trees(draft: TableLM, prefix: tuple, W: int, D: int):
    """The exact law of the stochastic-beam-search tree, as ``[(children dict, prob)]``.

    Kool et al. 2019: the kept prefixes at level t are the W length-t prefixes with the
    largest max-over-completions perturbed score, i.e. the first W distinct length-t prefixes
    of the ranking of complete sequences by perturbed log-probability, a ranking with the
    Plackett-Luce law. The ranking is drawn one sequence at a time until every level is full.
    """
    seqs, probs = sequence_law(draft, D, prefix=prefix)
    n_prefix = [len({s[:t] for s in seqs}) for t in range(1, D + 1)]
    need = [min(W, n) for n in n_prefix]
    out = []

    def levels(ranking):
        lv = []
        for t in range(1, D + 1):
            seen = []
            for i in ranking:
                pre = seqs[i][:t]
                if pre not in seen:
                    seen.append(pre)
                if len(seen) == W:
                    break
            lv.append(seen)
        return lv

    def rec(ranking, used, pr):
        lv = levels(ranking)
        if all(len(lv[t]) >= need[t] for t in range(D)):
            kids: dict = {}
            for t in range(D):
                for pre in lv[t]:
                    kids.setdefault(pre[:-1], []).append(pre[-1])
            out.append(({k: tuple(v) for k, v in kids.items()}, pr))
            return
        left = 1.0 - used
        for i in range(len(seqs)):
            if i not in ranking:
                rec(ranking + [i], used + probs[i], pr * probs[i] / left)

    rec([], 0.0, 1.0)
    merged: dict = {}
    for kids, pr in out:  # many rankings give the same tree
        key = tuple(sorted(kids.items()))
        merged[key] = merged.get(key, 0.0) + pr
    return [(dict(k), pr) for k, pr in merged.items()]


def _given_tree_law(kern: _Kernels, kids: dict, D: int) -> dict:
    out: dict = {}

    def rec(path, mass):
        children = kids.get(path, ()) if len(path) < D else ()
        if not children:
            p = kern.target.next_law(kern.prefix + path)
            for y in np.flatnonzero(p > 0):
                _add(out, path + (int(y),), mass * p[y])
            return
        K = kern.one(path, tuple(children))
        for y in np.flatnonzero(K > 0):
            if int(y) in children:
                rec(path + (int(y),), mass * K[y])
            else:
                _add(out, path + (int(y),), mass * K[y])

    rec((), 1.0)
    return out


def exact_tree(target: TableLM, draft: TableLM, node_rule: Union[str, Rule], *,
               branching: Optional[Sequence[int]] = None, beam_width: Optional[int] = None,
               depth: Optional[int] = None, prefix: Sequence[int] = ()) -> TreeAudit:
    r"""Exact audit of one call of tree verification between two :class:`TableLM`.

    Enumerates the law of the draft tree whose children are drawn from ``draft`` by the node
    rule's own draft scheme (``node_rule.drafts``, the law the rule assumes) and, for every
    tree, the exact law of the tokens :func:`spectheory.trees.tree_verify` emits with the
    node rule (its kernel at every node: descend into the child carrying the emitted token,
    else stop; a bonus token from the target at a leaf). Losslessness at sequence level: the
    emitted tokens continued by the target have the target's law on ``depth + 1`` tokens
    (see :func:`sequence_error`).

    * ``branching`` (the trees of :func:`spectheory.trees.draft_tree`): fixed per-level
      fan-outs; the children of a node are drawn independently of the rest of the tree given
      its path, so the law is enumerated node by node with
      :meth:`spectheory.DraftScheme.children_law`,

      .. math:: P(\text{tree}) = \prod_{s} Q_{\text{scheme}}\big(\bar c(s) \mid
          q(\cdot \mid s)\big);

    * ``beam_width`` and ``depth`` (the tree of :func:`spectheory.trees.beam_tree`, RSD-S):
      stochastic beam search, only for a rule drawing without replacement; the tree is a
      function of the Plackett-Luce ranking of complete sequences, enumerated until every
      level is decided (Kool et al. 2019).

    Args:
      target, draft: the models (same vocabulary).
      node_rule: a :class:`spectheory.Rule` or registered name; its scheme draws the children
        and needs a tree child sampler (``children``).
      branching: per-level fan-outs ``(b_1, ..., b_D)``; or
      beam_width, depth: the stochastic-beam-search tree.
      prefix: the context.

    Returns:
      :class:`TreeAudit`.

    Raises:
      ValueError: mismatched vocabularies, neither or both tree shapes given, a scheme without
        ``children``, a beam search with a rule not drawing without replacement, or a node
        with a number of children the rule is not defined for.

    >>> from spectheory.models import TableLM
    >>> t, d = TableLM.context_free([0.5, 0.5]), TableLM.context_free([0.9, 0.1])
    >>> a = exact_tree(t, d, "single", branching=(1, 1))
    >>> round(a.expected_accepted, 12), a.max_error < 1e-15
    (0.96, True)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781); Jeon et al., RSD (arXiv 2402.14160);
      Kool et al., ICML 2019 (arXiv 1903.06059).
    """
    check_table_lm(target, "target")
    check_table_lm(draft, "draft")
    if target.vocab_size != draft.vocab_size:
        raise ValueError("target and draft must share the vocabulary")
    r = _as_rule(node_rule)
    s = r.drafts
    beam = beam_width is not None or depth is not None
    if beam == (branching is not None):
        raise ValueError("branching: give either branching (fixed fan-outs) or beam_width and depth "
                         "(stochastic beam search), not both or neither")
    if s.children is None:
        raise ValueError(f"node_rule: rule {r.name!r} assumes draft scheme {s.name!r}, which has no tree child "
                         "sampler (children is None): no draft tree draws its children by that law")
    V = target.vocab_size
    prefix = tuple(int(t) for t in prefix)
    kern = _Kernels(r, target, draft, prefix)
    with jax.enable_x64(True):
        if beam:
            if beam_width is None or depth is None:
                raise ValueError("beam_width: the beam-search tree needs both beam_width and depth")
            if s.name != WITHOUT_REPLACEMENT.name:
                raise ValueError(
                    f"node_rule: the stochastic-beam-search tree draws its children without replacement "
                    f"(scheme {WITHOUT_REPLACEMENT.name!r}), but rule {r.name!r} assumes draft scheme {s.name!r}")
            W, D = int(beam_width), int(depth)
            trees = _beam_trees(draft, prefix, W, D)
            for kids, _ in trees:
                for m in {len(c) for c in kids.values()}:
                    if not r.supports(m, V):
                        raise ValueError(f"beam_width: rule {r.name!r} is not defined for {m} drafts over "
                                         f"V={V} tokens")
            emitted: dict = {}
            for kids, pr in trees:
                for key, w in _given_tree_law(kern, kids, D).items():
                    _add(emitted, key, pr * w)
            count = len(trees)
        else:
            try:
                branching = tuple(int(b) for b in branching)
            except (TypeError, ValueError):
                raise ValueError(f"branching: expected a sequence of positive ints, got {branching!r}") from None
            if not branching or min(branching) < 1:
                raise ValueError(f"branching: expected a non-empty sequence of positive ints, got {branching!r}")
            D = len(branching)
            emitted, count = _fixed_tree_law(kern, branching, V)
    expected = float(sum(w * (len(k) - 1) for k, w in emitted.items()))
    err = sequence_error(target, emitted, D + 1, prefix=prefix)
    return TreeAudit(expected, err, emitted, count)
