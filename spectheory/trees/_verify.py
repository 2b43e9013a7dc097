"""Tree verification: a one-position multi-draft rule applied at every node of a draft tree."""

from __future__ import annotations

from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import Rule, rule as _lookup
from spectheory.sampling._traced import any_traced, probs_ok
from spectheory.trees._tree import DraftTree, _as_scheme, _check_tree, tree_from_parents  # noqa: F401  (doctest)


class TreeResult(NamedTuple):
    """Outcome of verifying one draft tree.

    Under ``jit``/``vmap``, invalid input (NaN or inf anywhere in ``p`` or ``q``, a row read by
    the walk that is not a law, uniforms outside ``[0, 1)``, valid node tokens outside
    ``[0, V)``) gives the flag: every entry ``-1``.

    Attributes:
      tokens: the emitted tokens: the accepted path followed by one residual or bonus token,
        padded with -1.  # shape=(D+1,), dtype=int32
      num_accepted: number of accepted draft tokens ``k`` in ``0..D``; the call emits
        ``k + 1`` tokens (``-1``: invalid traced input).  # shape=(), dtype=int32
      nodes: node indices of the accepted path, padded with -1.  # shape=(D,), dtype=int32
    """

    tokens: jax.Array
    num_accepted: jax.Array
    nodes: jax.Array


def _as_rule(r: Union[str, Rule]) -> Rule:
    """Resolve a rule (object or registered name); ``ValueError``/``TypeError`` naming
    ``node_rule``."""
    if isinstance(r, Rule):
        return r
    if not isinstance(r, str):
        raise TypeError(f"node_rule: expected a spectheory.Rule or a registered name, got {type(r).__name__}")
    try:
        return _lookup(r)
    except (KeyError, ValueError) as e:
        raise ValueError(f"node_rule: {e}") from None


def _child_counts(tree: DraftTree) -> list[int]:
    B = tree.children.shape[-1]
    if _v.is_concrete(tree.num_children):
        return sorted({int(m) for m in np.asarray(tree.num_children) if m > 0})
    return list(range(1, B + 1))


def check_pairing(tree: DraftTree, node_rule: Union[str, Rule], vocab_size: int) -> Rule:
    r"""Check that ``node_rule`` may verify the children of ``tree`` and return the rule.

    The rule's draft scheme must be the tree's: the children of every node are drawn by
    ``tree.scheme`` (a :class:`spectheory.DraftScheme`) and a node rule is lossless only for
    the draft law it assumes, so the pairing is by scheme identity,
    ``node_rule.drafts.name == tree.scheme.name`` (i.i.d. children for SpecInfer's RRS,
    SpecTr's K-SEQ and ``"single"`` on a chain; children without replacement for RSD; greedy
    children for ``"greedy"``). The rule must also be defined for every number of children
    that occurs (every ``1..width`` when the tree is traced) and be traceable.

    .. math:: \forall s:\ \bar c(s) \sim Q_{\text{rule}}(\cdot \mid q(\cdot \mid s)),
        \quad |\bar c(s)| \in \mathrm{supported}(\text{rule}, V).

    Args:
      tree: a :class:`~spectheory.trees.DraftTree`.
      node_rule: a :class:`spectheory.Rule` or a registered name.
      vocab_size: ``V``.

    Returns:
      the :class:`spectheory.Rule`.

    Raises:
      ValueError: on a mismatched scheme (naming the rule and both schemes), an unsupported
        number of children, a host-only rule, an unknown rule name or a bad ``vocab_size``.
      TypeError: ``tree`` not a :class:`~spectheory.trees.DraftTree`, ``node_rule`` neither a
        rule nor a name.

    >>> check_pairing(tree_from_parents([1, 0], [-1, 0], "iid"), "single", 2).name
    'single'

    References:
      Jeon et al., RSD (arXiv 2402.14160), Sec. 3 (the draft law each node rule assumes);
      Miao et al., SpecInfer (arXiv 2305.09781).
    """
    _check_tree(tree)
    vocab_size = _v.check_count(vocab_size, "vocab_size")
    r = _as_rule(node_rule)
    s = _as_scheme(tree.scheme)
    if r.drafts.name != s.name:
        raise ValueError(
            f"node_rule: rule {r.name!r} assumes draft scheme {r.drafts.name!r}, but the tree's children are "
            f"drawn by scheme {s.name!r}: the node rule must assume the children's law, or tree verification "
            "is not lossless")
    bad = [m for m in _child_counts(tree) if not r.supports(m, vocab_size)]
    if bad:
        raise ValueError(f"rule {r.name!r} is not defined for {bad} drafts over V={vocab_size} tokens, "
                         f"but tree nodes have that many children")
    if r.verifier.host_only:
        raise ValueError(f"rule {r.name!r} is host-only; tree verification needs a traceable verifier")
    return r


def _check_tree_laws(tree, p, q):
    _check_tree(tree)
    if tree.token.ndim != 1:
        raise ValueError(f"tree: expected one tree (1-d arrays; vmap over a batch), got token shape "
                         f"{tuple(tree.token.shape)}")
    p = _v.as_probs(p, "p", ndim=2)
    q = _v.as_probs(q, "q", ndim=2)
    V = _v.same_vocab(p, q)
    N = tree.token.shape[-1]
    if N < 1:
        raise ValueError("tree: expected at least one node (for no drafts, sample from p directly)")
    for name, a in (("p", p), ("q", q)):
        if a.shape[0] != N + 1:
            raise ValueError(f"{name}: expected N+1 = {N + 1} rows (root, then one per node), got {a.shape[0]}")
    if tree.children.shape[0] != N + 1:
        raise ValueError("tree.children: expected N+1 rows")
    _v.as_tokens(tree.token, "tree.token", V)
    dtype = jnp.result_type(p.dtype, q.dtype)
    return p.astype(dtype), q.astype(dtype), V


def _per_step(r: Rule, B: int, V: int) -> tuple[list[int], int]:
    counts = [m for m in range(1, B + 1) if r.supports(m, V)]
    return counts, max([1] + [r.verifier.num_uniforms(m) for m in counts])


def tree_num_uniforms(tree: DraftTree, node_rule: Union[str, Rule], vocab_size: int) -> int:
    r"""Number of uniforms :func:`tree_verify_with_uniforms` consumes.

    .. math:: (D + 1) \cdot \max\big(1, \max_{m \le B} \mathrm{num\_uniforms}(m)\big)

    over the child counts ``m <= B`` the rule supports.

    Args:
      tree: a :class:`~spectheory.trees.DraftTree`.
      node_rule: a :class:`spectheory.Rule` or a registered name.
      vocab_size: ``V``, a positive int.

    Returns:
      int.

    Raises:
      ValueError, TypeError: a bad ``tree``, ``node_rule`` or ``vocab_size``, or a rule that may
        not verify the tree's children (:func:`check_pairing`).

    >>> tree_num_uniforms(tree_from_parents([1, 0], [-1, 0], "iid"), "single", 2)
    6

    References:
      Leviathan et al. 2023 (arXiv 2211.17192) (explicit uniforms per decision).
    """
    r = check_pairing(tree, node_rule, vocab_size)
    _, S = _per_step(r, tree.children.shape[-1], int(vocab_size))
    return (tree.max_depth + 1) * S


def tree_verify_with_uniforms(uniforms, tree: DraftTree, p, q, node_rule: Union[str, Rule]) -> TreeResult:
    r"""Verify a draft tree with a one-position rule at every node, with explicit noise.

    Starting at the root, at the current node :math:`s` with children :math:`c_1..c_m` (a
    multi-draft tuple drawn from :math:`q(\cdot \mid s)` by ``tree.scheme``):

    * :math:`m = 0` (a leaf, or depth ``D``): emit a bonus token :math:`y \sim p(\cdot \mid s)`
      and stop;
    * otherwise run the rule, :math:`y \sim K(\cdot \mid c_1..c_m)` with
      :math:`p(\cdot \mid s), q(\cdot \mid s)`; if :math:`y` is the token of a child, descend
      into the first child carrying it, else emit :math:`y` (a residual token) and stop.

    Every step reads ``S = max_m num_uniforms(m)`` uniforms (the bonus draw uses the first),
    step ``t`` the slice ``[t S, (t + 1) S)``. Losslessness at sequence level holds when the
    children of every node have, given the accepted path, exactly the law the node rule
    assumes (checked via :func:`check_pairing`). Descending by token (not by the rule's
    index) makes the outcome a function of the tree's tokens, so :func:`tree_kernel` is exact
    for a fixed tree; the rules' residuals never put mass on a rejected draft, so this only
    matters for duplicate i.i.d. children, whose subtrees are exchangeable.

    Args:
      uniforms: float[tree_num_uniforms(tree, rule)] i.i.d. U[0, 1).
      tree: a :class:`~spectheory.trees.DraftTree`.
      p: target laws at every row (root, then node ``i`` at row ``i + 1``), float[N+1, V].
      q: draft laws the children of every row were drawn from, float[N+1, V] (rows of nodes
        without children are ignored).
      node_rule: a :class:`spectheory.Rule` or a registered name, e.g. ``"single"``.

    Returns:
      :class:`TreeResult` (all ``-1`` under ``jit``/``vmap`` for invalid input).

    Raises:
      ValueError: (eager) ``p``/``q`` not laws of shape ``[N+1, V]``, node tokens out of
        range, uniforms of the wrong shape or outside ``[0, 1)``, or as
        :func:`check_pairing`.
      TypeError: ``tree`` not a :class:`~spectheory.trees.DraftTree`.

    >>> import jax.numpy as jnp
    >>> t = tree_from_parents([1, 0], [-1, 0], "iid")  # a chain: branching 1
    >>> p = jnp.array([[0.5, 0.5]] * 3); q = jnp.array([[0.5, 0.5]] * 3)
    >>> r = tree_verify_with_uniforms(jnp.full(6, 0.3), t, p, q, "single")
    >>> r.tokens.tolist(), int(r.num_accepted), r.nodes.tolist()
    ([1, 0, 0], 2, [0, 1])

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781), Sec. 4; Sun et al., SpecTr,
      NeurIPS 2023 (arXiv 2310.15141); Jeon et al., RSD (arXiv 2402.14160).
    """
    p, q, V = _check_tree_laws(tree, p, q)
    r = check_pairing(tree, node_rule, V)
    B = tree.children.shape[-1]
    D = tree.max_depth
    counts, S = _per_step(r, B, V)
    u = _v.check_uniforms(uniforms, (D + 1) * S).astype(p.dtype).reshape(D + 1, S)

    def make_branch(m):
        nu = r.verifier.num_uniforms(m)

        def branch(uu, pr, qr, kids_tok):
            return r.verifier.verify_with_uniforms(uu[:nu], pr, qr, kids_tok[:m]).token.astype(jnp.int32)

        return branch

    branches = [make_branch(m) for m in counts]
    slot_of = np.zeros(B + 1, np.int32)  # m -> branch index (unsupported m never occur)
    for i, m in enumerate(counts):
        slot_of[m] = i

    traced = any_traced(p, q, u, tree.token, tree.children, tree.num_children, tree.valid)
    laws_ok = jnp.all(jnp.abs(p) < jnp.inf) & jnp.all(jnp.abs(q) < jnp.inf) if traced else None
    row = jnp.zeros((), jnp.int32)
    done = jnp.zeros((), bool)
    k = jnp.zeros((), jnp.int32)
    tokens = jnp.full((D + 1,), -1, jnp.int32)
    nodes = jnp.full((D,), -1, jnp.int32)
    for t in range(D + 1):
        kids = tree.children[row]
        m = tree.num_children[row] if t < D else jnp.zeros((), jnp.int32)
        kid_tok = jnp.where(kids >= 0, tree.token[jnp.maximum(kids, 0)], -1)
        pr, qr = p[row], q[row]
        if traced:  # only the rows the walk reads must be laws (q only where there are children)
            laws_ok = laws_ok & (done | (probs_ok(pr) & ((m == 0) | probs_ok(qr))))
        bonus = _core.sample_index(u[t, 0], pr)
        if branches:
            # padding (-1) replaced by token 0 for the rule; only the first m drafts are read
            y_rule = jax.lax.switch(jnp.asarray(slot_of)[jnp.clip(m, 0, B)], branches, u[t], pr, qr,
                                    jnp.maximum(kid_tok, 0))
        else:
            y_rule = bonus
        y = jnp.where(m > 0, y_rule, bonus)
        match = (kid_tok == y) & (jnp.arange(B) < m)
        descend = (m > 0) & jnp.any(match)
        child = kids[jnp.argmax(match)]
        act = ~done
        tokens = jnp.where(act & (jnp.arange(D + 1) == k), y, tokens)
        if t < D:
            nodes = jnp.where(act & descend & (jnp.arange(D) == k), child, nodes)
        row = jnp.where(act & descend, child + 1, row)
        k = jnp.where(act & descend, k + 1, k)
        done = done | ~descend
    k = k.astype(jnp.int32)
    if traced:
        ok = laws_ok & jnp.all((u >= 0) & (u < 1)) & jnp.all(~tree.valid | ((tree.token >= 0) & (tree.token < V)))
        tokens, nodes, k = (jnp.where(ok, a, -1) for a in (tokens, nodes, k))
    return TreeResult(tokens, k, nodes)


def tree_verify(key, tree: DraftTree, p, q, node_rule: Union[str, Rule]) -> TreeResult:
    """Verify a draft tree, drawing the uniforms from ``key``.

    Same as :func:`tree_verify_with_uniforms` with
    ``jax.random.uniform(key, (tree_num_uniforms(tree, rule),), dtype)``.

    .. math:: \\Pr(\\text{emit } z) \\text{ continued by the target} = P_{\\text{target}}.

    Args:
      key: a ``jax.random`` key.
      tree: :class:`~spectheory.trees.DraftTree`. p, q: float[N+1, V]. node_rule: rule or name.

    Returns:
      :class:`TreeResult`.

    Raises:
      ValueError: a bad ``key``, or as :func:`tree_verify_with_uniforms`.

    References:
      Miao et al., SpecInfer (arXiv 2305.09781); Jeon et al., RSD (arXiv 2402.14160).
    """
    key = _v.check_key(key)
    _check_tree_laws(tree, p, q)
    r = _as_rule(node_rule)
    dtype = _core.float_dtype(p, q)
    u = jax.random.uniform(key, (tree_num_uniforms(tree, r, jnp.shape(p)[-1]),), dtype)
    return tree_verify_with_uniforms(u, tree, p, q, r)


def tree_kernel(tree: DraftTree, p, q, node_rule: Union[str, Rule]) -> dict:
    r"""Exact law of the emitted token sequence for a fixed (concrete) tree (host, float64).

    Recursively, from the root: at a node with children :math:`\bar c`, the rule's kernel
    :math:`K(y \mid \bar c)` sends mass to descending into the (first) child with token
    :math:`y`, or to emitting :math:`y` and stopping; at a leaf the bonus law
    :math:`p(\cdot \mid s)` is emitted.

    Args:
      tree: a concrete :class:`~spectheory.trees.DraftTree`.
      p, q: float[N+1, V]. node_rule: rule or name.

    Returns:
      ``{emitted tokens (tuple): probability}``.

    Raises:
      TypeError: ``tree`` not a concrete :class:`~spectheory.trees.DraftTree`.
      ValueError: as :func:`tree_verify_with_uniforms`.

    >>> import numpy as np
    >>> t = tree_from_parents([0], [-1], "iid")
    >>> law = tree_kernel(t, np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([[1.0, 0.0], [0.5, 0.5]]), "single")
    >>> {k: round(v, 12) for k, v in sorted(law.items())}
    {(0, 0): 0.5, (1,): 0.5}

    References:
      Miao et al., SpecInfer (arXiv 2305.09781).
    """
    _check_tree(tree, concrete=True)
    if not (_v.is_concrete(p) and _v.is_concrete(q)):
        raise TypeError("p, q: tree_kernel runs on the host and needs concrete laws, got a traced array")
    with jax.enable_x64(True):
        p = np.asarray(p, dtype=np.float64)
        q = np.asarray(q, dtype=np.float64)
        p_j, q_j, V = _check_tree_laws(tree, jnp.asarray(p), jnp.asarray(q))
        r = check_pairing(tree, node_rule, V)
        children = np.asarray(tree.children)
        num = np.asarray(tree.num_children)
        token = np.asarray(tree.token)
        out: dict = {}

        def rec(row, path, mass, depth):
            m = int(num[row]) if depth < tree.max_depth else 0
            if m == 0:
                for y in np.flatnonzero(p[row] > 0):
                    key = path + (int(y),)
                    out[key] = out.get(key, 0.0) + float(mass * p[row, y])
                return
            kids = children[row, :m]
            kt = token[kids]
            K = np.asarray(r.verifier.kernel(jnp.asarray(p[row]), jnp.asarray(q[row]),
                                             jnp.asarray(kt, jnp.int32)), dtype=np.float64)
            for y in np.flatnonzero(K > 0):
                hit = np.flatnonzero(kt == y)
                if hit.size:
                    rec(int(kids[hit[0]]) + 1, path + (int(y),), mass * K[y], depth + 1)
                else:
                    key = path + (int(y),)
                    out[key] = out.get(key, 0.0) + float(mass * K[y])

        rec(0, (), 1.0, 0)
        return out
