"""Exact audit of tree verification over tabular models (sequence level)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory._registry import Rule
from spectheory.audit._chain import sequence_error
from spectheory.audit._exact import kernel_table
from spectheory.drafts._iid import iid_law
from spectheory.models._table import TableLM
from spectheory.sampling._beam import sequence_law
from spectheory.sampling._gumbel import plackett_luce_law
from spectheory.trees._verify import _as_rule, check_scheme

#: Builders :func:`exact_tree` can enumerate, with the children's law each one draws.
BUILDERS = {"iid": "iid", "gumbel": "without_replacement", "greedy": "greedy", "beam": "without_replacement"}


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


def greedy_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of the greedy children drawn by :func:`spectheory.trees.greedy_tree`.

    The ``n - 1`` most likely tokens (ties to the lower id) in decreasing order, then one draw
    from :math:`q` restricted to the other tokens; when :math:`q` has at most ``n - 1`` tokens
    of positive mass the tuple is those tokens (deterministic, shorter).

    .. math:: Q(t_1, \dots, t_{n-1}, x) = \frac{q(x)}{1 - q(T)}, \quad x \notin T.

    Args:
      q: draft law, float[V]. n: number of children.

    Returns:
      ``(tuples int64[M, m], probs float64[M])``.

    >>> t, w = greedy_law([0.2, 0.5, 0.3], 2)
    >>> t.tolist(), [round(float(x), 4) for x in w]
    ([[1, 0], [1, 2]], [0.4, 0.6])

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779).
    """
    q = np.asarray(q, dtype=np.float64)
    order = np.argsort(-q, kind="stable")
    top = [int(i) for i in order[: n - 1] if q[i] > 0]
    rest = [i for i in np.flatnonzero(q > 0) if i not in top]
    if len(top) < n - 1 or not rest:
        return np.array([top], dtype=np.int64), np.array([1.0])
    mass = q[rest].sum()
    return (np.array([top + [int(i)] for i in rest], dtype=np.int64),
            np.array([q[i] / mass for i in rest], dtype=np.float64))


def _children_law(scheme: str, q, n: int):
    support = int(np.sum(np.asarray(q) > 0))
    if scheme == "iid":
        return iid_law(q, n)
    if scheme == "without_replacement":
        return plackett_luce_law(q, min(n, support))
    return greedy_law(q, n)


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


def _fixed_tree_law(kern: _Kernels, scheme: str, branching: tuple) -> tuple[dict, int]:
    """Emitted law for trees whose subtrees are drawn independently given their path."""
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
        tuples, probs = _children_law(scheme, q, branching[d])
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


def exact_tree(target: TableLM, draft: TableLM, node_rule: Union[str, Rule], builder: str, *,
               branching: Optional[Sequence[int]] = None, beam_width: Optional[int] = None,
               depth: Optional[int] = None, prefix: Sequence[int] = ()) -> TreeAudit:
    r"""Exact audit of one call of tree verification between two :class:`TableLM`.

    Enumerates the law of the draft tree drawn by ``builder`` from ``draft`` and, for every
    tree, the exact law of the tokens :func:`spectheory.trees.tree_verify` emits with the
    node rule (its kernel at every node: descend into the child carrying the emitted token,
    else stop; a bonus token from the target at a leaf). Losslessness at sequence level: the
    emitted tokens continued by the target have the target's law on ``depth + 1`` tokens
    (see :func:`sequence_error`).

    * ``"iid"``, ``"gumbel"``, ``"greedy"``: fixed per-level ``branching``; the children of a
      node are drawn independently of the rest of the tree given its path, so the law is
      enumerated node by node (i.i.d. law, Plackett-Luce law, greedy law).
    * ``"beam"``: stochastic beam search of width ``beam_width`` and ``depth``; the tree is a
      function of the Plackett-Luce ranking of complete sequences, enumerated until every
      level is decided (Kool et al. 2019).

    Args:
      target, draft: the models (same vocabulary).
      node_rule: a :class:`spectheory.Rule` or registered name; checked against the
        builder's children law (:func:`spectheory.trees.check_scheme`).
      builder: ``"iid"``, ``"gumbel"``, ``"greedy"`` or ``"beam"``.
      branching: per-level branching for the fixed builders.
      beam_width, depth: for ``"beam"``.
      prefix: the context.

    Returns:
      :class:`TreeAudit`.

    >>> from spectheory.models import TableLM
    >>> t, d = TableLM.context_free([0.5, 0.5]), TableLM.context_free([0.9, 0.1])
    >>> a = exact_tree(t, d, "single", "iid", branching=(1, 1))
    >>> round(a.expected_accepted, 12), a.max_error < 1e-15
    (0.96, True)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781); Jeon et al., RSD (arXiv 2402.14160);
      Kool et al., ICML 2019 (arXiv 1903.06059).
    """
    if target.vocab_size != draft.vocab_size:
        raise ValueError("target and draft must share the vocabulary")
    if builder not in BUILDERS:
        raise ValueError(f"builder: expected one of {tuple(BUILDERS)}, got {builder!r}")
    r = check_scheme(BUILDERS[builder], _as_rule(node_rule))
    V = target.vocab_size
    prefix = tuple(int(t) for t in prefix)
    kern = _Kernels(r, target, draft, prefix)
    with jax.enable_x64(True):
        if builder == "beam":
            if beam_width is None or depth is None:
                raise ValueError("builder 'beam' needs beam_width and depth")
            W, D = int(beam_width), int(depth)
            trees = _beam_trees(draft, prefix, W, D)
            for kids, _ in trees:
                for m in {len(c) for c in kids.values()}:
                    if not r.supports(m, V):
                        raise ValueError(f"rule {r.name!r} is not defined for {m} drafts over V={V} tokens")
            emitted: dict = {}
            for kids, pr in trees:
                for key, w in _given_tree_law(kern, kids, D).items():
                    _add(emitted, key, pr * w)
            count = len(trees)
        else:
            if branching is None:
                raise ValueError(f"builder {builder!r} needs branching")
            branching = tuple(int(b) for b in branching)
            for b in set(branching):
                if not r.supports(b, V) and not (builder != "iid" and any(r.supports(m, V) for m in range(1, b))):
                    raise ValueError(f"rule {r.name!r} is not defined for {b} drafts over V={V} tokens")
            D = len(branching)
            emitted, count = _fixed_tree_law(kern, BUILDERS[builder], branching)
    expected = float(sum(w * (len(k) - 1) for k, w in emitted.items()))
    err = sequence_error(target, emitted, D + 1, prefix=prefix)
    return TreeAudit(expected, err, emitted, count)
