"""Draft trees as static arrays, and the builders that draw them from a draft model."""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spectheory.sampling._beam import stochastic_beam_search_with_gumbels

#: Child-law tags a tree can carry (see :class:`DraftTree`).
SCHEMES = ("iid", "without_replacement", "greedy")


class DraftTree(NamedTuple):
    """A draft tree over ``N`` node slots, as arrays usable under ``jit`` and ``vmap``.

    The *root* is the context (the accepted prefix): it is not a node slot. Node ``i`` is a
    drafted token; its path from the root is the draft sequence it stands for. Rows of the
    per-node law arrays ``p``/``q`` passed to the verifier are indexed by *row* = node + 1,
    row 0 being the root. Slots are in level order (all depth-1 nodes first); unused slots
    (``valid`` false) carry token 0, parent -1, depth 0 and no children.

    Attributes:
      token: the drafted token of each node.  # shape=(N,), dtype=int32
      parent: parent node index; ``-1`` for children of the root (and unused slots).
        # shape=(N,), dtype=int32
      depth: number of drafted tokens on the path, 1 for root children, 0 for unused slots.
        # shape=(N,), dtype=int32
      children: ``children[r]`` lists the node indices of the children of row ``r`` (row 0:
        the root, row ``i + 1``: node ``i``) in *draft order*, i.e. the order of the
        multi-draft tuple the node rule is given; padded with -1.  # shape=(N+1, B), dtype=int32
      num_children: number of children of each row.  # shape=(N+1,), dtype=int32
      valid: whether the slot holds a node.  # shape=(N,), dtype=bool
      scheme: static tag of the children's joint law given their parent, which the node rule
        must assume: ``"iid"`` (i.i.d. from the parent's draft law: SpecInfer, SpecTr),
        ``"without_replacement"`` (ordered draws without replacement: RSD-C, RSD-S) or
        ``"greedy"`` (top ``n - 1`` tokens then one draw from the rest: Hu et al. 2025).
      max_depth: static largest depth ``D``.
    """

    token: jax.Array
    parent: jax.Array
    depth: jax.Array
    children: jax.Array
    num_children: jax.Array
    valid: jax.Array
    scheme: str
    max_depth: int


jax.tree_util.register_pytree_node(
    DraftTree,
    lambda t: ((t.token, t.parent, t.depth, t.children, t.num_children, t.valid), (t.scheme, t.max_depth)),
    lambda aux, ch: DraftTree(*ch, *aux),
)


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: expected one of {SCHEMES}, got {scheme!r}")
    return scheme


def tree_from_parents(token: Sequence[int], parent: Sequence[int], scheme: str, *, max_children=None) -> DraftTree:
    r"""Build a :class:`DraftTree` on the host from token and parent lists.

    Children are listed in increasing node index (so list siblings in draft order), and

    .. math:: \mathrm{depth}(i) = 1 \text{ if } \mathrm{parent}(i) = -1, \quad
        \mathrm{depth}(\mathrm{parent}(i)) + 1 \text{ otherwise}.

    Args:
      token: int[N] drafted tokens.
      parent: int[N] parent node index, ``-1`` for children of the root; a parent must come
        before its children.
      scheme: the children's law tag (see :class:`DraftTree`).
      max_children: width ``B`` of the ``children`` table (default: the largest fan-out).

    Returns:
      :class:`DraftTree` (concrete arrays).

    >>> t = tree_from_parents([2, 0, 1], [-1, 0, 0], "iid")
    >>> t.children.tolist(), t.depth.tolist(), t.max_depth
    ([[0, -1], [1, 2], [-1, -1], [-1, -1]], [1, 2, 2], 2)

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781), Sec. 4 (token trees).
    """
    _check_scheme(scheme)
    token = np.asarray(token, dtype=np.int32).reshape(-1)
    parent = np.asarray(parent, dtype=np.int32).reshape(-1)
    N = token.shape[0]
    if parent.shape != (N,):
        raise ValueError("parent: expected the same length as token")
    depth = np.zeros(N, np.int32)
    kids = [[] for _ in range(N + 1)]
    for i in range(N):
        if not -1 <= parent[i] < i:
            raise ValueError(f"parent[{i}] = {parent[i]}: a parent must precede its children (or be -1)")
        depth[i] = 1 if parent[i] < 0 else depth[parent[i]] + 1
        kids[parent[i] + 1].append(i)
    B = max([len(k) for k in kids] + [1]) if max_children is None else int(max_children)
    if any(len(k) > B for k in kids):
        raise ValueError(f"max_children={B} is smaller than the largest fan-out")
    children = np.full((N + 1, B), -1, np.int32)
    for r, k in enumerate(kids):
        children[r, :len(k)] = k
    num = np.array([len(k) for k in kids], np.int32)
    return DraftTree(jnp.asarray(token), jnp.asarray(parent), jnp.asarray(depth), jnp.asarray(children),
                     jnp.asarray(num), jnp.ones(N, bool), scheme, int(depth.max(initial=0)))


# --- builders -----------------------------------------------------------------------------

def _check_branching(branching) -> tuple[int, ...]:
    b = tuple(int(x) for x in branching)
    if not b or any(x < 1 for x in b):
        raise ValueError(f"branching: expected a non-empty sequence of positive ints, got {branching!r}")
    return b


def _iid_children(key, logq, b):
    tok = jax.random.categorical(key, logq, shape=(b,)).astype(jnp.int32)
    return tok, jnp.ones((b,), bool)


def _wor_children(key, logq, b):
    V = logq.shape[-1]
    g = jax.random.gumbel(key, (V,), logq.dtype)
    vals, tok = jax.lax.top_k(jnp.where(logq > -jnp.inf, logq + g, -jnp.inf), min(b, V))
    valid = vals > -jnp.inf
    if b > V:
        tok = jnp.concatenate([tok, jnp.zeros((b - V,), tok.dtype)])
        valid = jnp.concatenate([valid, jnp.zeros((b - V,), bool)])
    return tok.astype(jnp.int32), valid


def _greedy_children(key, logq, b):
    V = logq.shape[-1]
    m = min(b - 1, V)
    top_vals, top = jax.lax.top_k(logq, m) if m > 0 else (jnp.zeros((0,), logq.dtype), jnp.zeros((0,), jnp.int32))
    rest = logq.at[top].set(-jnp.inf) if m > 0 else logq
    has_rest = jnp.any(rest > -jnp.inf)
    last = jax.random.categorical(key, jnp.where(has_rest, rest, 0.0)).astype(jnp.int32)
    tok = jnp.concatenate([top.astype(jnp.int32), last[None]])[:b]
    valid = jnp.concatenate([top_vals > -jnp.inf, has_rest[None]])[:b]
    if tok.shape[0] < b:
        pad = b - tok.shape[0]
        tok = jnp.concatenate([tok, jnp.zeros((pad,), jnp.int32)])
        valid = jnp.concatenate([valid, jnp.zeros((pad,), bool)])
    return tok, valid


_CHILD_SAMPLERS = {"iid": _iid_children, "without_replacement": _wor_children, "greedy": _greedy_children}


def _layout(branching):
    """Static level-order layout of a full tree with the given per-level branching."""
    sizes, n = [], 1
    for b in branching:
        n *= b
        sizes.append(n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    return sizes, starts, int(sum(sizes))


def _build_fixed(key, log_probs_fn, branching, vocab_size, scheme):
    branching = _check_branching(branching)
    V = int(vocab_size)
    sizes, starts, N = _layout(branching)
    D = len(branching)
    B = max(branching)
    keys = jax.random.split(key, D)
    tokens, parents, valids, q_rows = [], [], [], []
    prefixes = jnp.zeros((1, 0), jnp.int32)
    alive = jnp.ones((1,), bool)
    for t, b in enumerate(branching):
        logq = jnp.asarray(log_probs_fn(prefixes))
        dtype = jnp.result_type(logq.dtype, jnp.float32)
        logq = logq.astype(dtype)
        if logq.shape != (prefixes.shape[0], V):
            raise ValueError(f"log_probs_fn: expected shape ({prefixes.shape[0]}, {V}), got {tuple(logq.shape)}")
        q_rows.append(jnp.where(alive[:, None], jnp.exp(logq), 1.0 / V))
        nk = jax.random.split(keys[t], prefixes.shape[0])
        tok, ok = jax.vmap(lambda k, lq: _CHILD_SAMPLERS[scheme](k, lq, b))(nk, logq)
        ok = ok & alive[:, None]
        n_par = prefixes.shape[0]
        par = (np.arange(n_par)[:, None] + (starts[t - 1] if t > 0 else 0)) * np.ones((1, b), int)
        par = par if t > 0 else np.full((1, b), -1)
        tokens.append(jnp.where(ok, tok, 0).reshape(-1))
        parents.append(jnp.where(ok, jnp.asarray(par, jnp.int32), -1).reshape(-1))
        valids.append(ok.reshape(-1))
        prefixes = jnp.concatenate([jnp.repeat(prefixes, b, axis=0), tok.reshape(-1, 1)], axis=1)
        alive = ok.reshape(-1)
    token = jnp.concatenate(tokens).astype(jnp.int32)
    parent = jnp.concatenate(parents).astype(jnp.int32)
    valid = jnp.concatenate(valids)
    depth = jnp.where(valid, jnp.asarray(np.repeat(np.arange(1, D + 1), sizes), jnp.int32), 0)
    # children table: row 0 = root, row i+1 = node i; within a sibling block the samplers put
    # the valid draws first, so the valid children are a prefix of each row
    blocks = [(0, 0, branching[0])]
    for t in range(1, D):
        for j in range(sizes[t - 1]):
            blocks.append((starts[t - 1] + j + 1, starts[t] + j * branching[t], branching[t]))
    ch = jnp.full((N + 1, B), -1, jnp.int32)
    for r, first, b in blocks:
        idx = jnp.arange(first, first + b, dtype=jnp.int32)
        ch = ch.at[r, :b].set(jnp.where(valid[first:first + b], idx, -1))
    num = jnp.sum(ch >= 0, axis=1).astype(jnp.int32)
    q_all = jnp.concatenate(q_rows + [jnp.full((sizes[-1], V), 1.0 / V, q_rows[0].dtype)], axis=0)
    # rows of q: root, then level-order nodes; the last level has no children (uniform rows)
    tree = DraftTree(token, parent, depth, ch, num, valid, scheme, D)
    return tree, q_all


def iid_tree(key, log_probs_fn: Callable, branching: Sequence[int], vocab_size: int):
    r"""A draft tree whose children are i.i.d. draws from the draft model (SpecInfer, SpecTr).

    Every node at depth :math:`t` (the root at depth 0) gets ``branching[t]`` children
    :math:`c_1, \dots, c_{b} \overset{iid}{\sim} q(\cdot \mid \text{path})`.

    Args:
      key: a ``jax.random`` key.
      log_probs_fn: ``prefixes int32[M, t] -> float[M, V]`` next-token log-probabilities of
        the draft model (e.g. :func:`spectheory.sampling.table_log_probs_fn`).
      branching: static per-level branching ``(b_1, ..., b_D)``; ``N = b_1 + b_1 b_2 + ...``.
      vocab_size: static ``V``.

    Returns:
      ``(tree, q)``: the :class:`DraftTree` (scheme ``"iid"``) and the draft law at every row,
      float[N+1, V] (rows of nodes without children are uniform placeholders, never used).

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.5]), 2)
    >>> tree, q = iid_tree(jax.random.key(0), fn, (2, 1), 2)
    >>> tree.parent.tolist(), q.shape
    ([-1, -1, 0, 1], (5, 2))

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781); Sun et al., SpecTr, NeurIPS 2023
      (arXiv 2310.15141).
    """
    return _build_fixed(key, log_probs_fn, branching, vocab_size, "iid")


def gumbel_tree(key, log_probs_fn: Callable, branching: Sequence[int], vocab_size: int):
    r"""A draft tree with constant branching per level drawn without replacement (RSD-C).

    Every node at depth :math:`t` gets the Gumbel-top-``branching[t]`` of its draft
    log-probabilities: ``b`` ordered draws without replacement from
    :math:`q(\cdot \mid \text{path})` (fewer when :math:`q` has fewer than ``b`` tokens of
    positive mass; the missing slots are invalid),

    .. math:: (c_1, \dots, c_b) = \operatorname{arg\,top}_b\big(\log q(c \mid s) + g_c\big),
        \quad P(c_1..c_b) = \prod_j \frac{q(c_j \mid s)}{1 - \sum_{l<j} q(c_l \mid s)}.

    Args:
      key, log_probs_fn, branching, vocab_size: as :func:`iid_tree`.

    Returns:
      ``(tree, q)`` with scheme ``"without_replacement"``: ``tree`` has
      ``N = b_1 + b_1 b_2 + ...`` slots, ``q`` is float[N+1, V].

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.5, 0.0]), 2)
    >>> tree, q = gumbel_tree(jax.random.key(0), fn, (3, 1), 3)
    >>> tree.num_children.tolist()[:1], int(tree.valid.sum())
    ([2], 4)

    References:
      Jeon et al., Recursive Speculative Decoding: Accelerating LLM Inference via Sampling
      Without Replacement (arXiv 2402.14160), RSD-C; Kool et al., ICML 2019
      (arXiv 1903.06059).
    """
    return _build_fixed(key, log_probs_fn, branching, vocab_size, "without_replacement")


def greedy_tree(key, log_probs_fn: Callable, branching: Sequence[int], vocab_size: int):
    r"""A draft tree with greedy children (Hu et al. 2025) at every node.

    Every node at depth :math:`t` with ``b = branching[t]`` gets the ``b - 1`` most likely
    tokens of :math:`q(\cdot \mid \text{path})` (in decreasing order; ties to the lower id)
    followed by one draw :math:`X \sim q'`, :math:`q` restricted to the other tokens and
    renormalised:

    .. math:: T = \operatorname{top}_{b-1}\, q(\cdot \mid s), \qquad
        q'(x) = \frac{q(x \mid s)\,[x \notin T]}{1 - q(T \mid s)}.

    Args:
      key, log_probs_fn, branching, vocab_size: as :func:`iid_tree`.

    Returns:
      ``(tree, q)`` with scheme ``"greedy"`` (shapes as :func:`iid_tree`).

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.2, 0.5, 0.3]), 1)
    >>> tree, q = greedy_tree(jax.random.key(0), fn, (2,), 3)
    >>> int(tree.token[0])
    1

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779).
    """
    return _build_fixed(key, log_probs_fn, branching, vocab_size, "greedy")


def beam_tree(key, log_probs_fn: Callable, beam_width: int, depth: int, vocab_size: int):
    r"""The draft tree of stochastic beam search (RSD-S): every beam kept at every level.

    Runs :func:`spectheory.sampling.stochastic_beam_search`; node ``t * W + w`` is beam slot
    ``w`` at level ``t + 1``. Siblings are listed in decreasing perturbed log-probability,
    which orders them as draws without replacement from the parent's draft law; the number
    of children varies from node to node (0 to ``W``). The level-``t`` beam is the top ``W``
    of

    .. math:: G(s) = \max_{s' \succeq s,\ |s'| = D} \big(\log q(s') + g_{s'}\big),
        \qquad |s| = t.

    Args:
      key: a ``jax.random`` key.
      log_probs_fn: ``prefixes int32[W, t] -> float[W, V]``.
      beam_width: static ``W``. depth: static ``D``. vocab_size: static ``V``.

    Returns:
      ``(tree, q)`` with ``N = W * D`` slots and scheme ``"without_replacement"``; ``q`` is
      float[N+1, V].

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.3, 0.2]), 2)
    >>> tree, q = beam_tree(jax.random.key(0), fn, 2, 2, 3)
    >>> tree.token.shape, q.shape, int(tree.num_children[0])
    ((4,), (5, 3), 2)

    References:
      Jeon et al. (arXiv 2402.14160), RSD-S; Kool et al., ICML 2019 (arXiv 1903.06059).
    """
    W, D, V = int(beam_width), int(depth), int(vocab_size)
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    g = jax.random.gumbel(key, (D, W, V), dtype)
    # record the draft law at every kept prefix while the search runs
    seen = []

    def fn(prefixes):
        out = jnp.asarray(log_probs_fn(prefixes))
        seen.append(out)
        return out

    res = stochastic_beam_search_with_gumbels(g, fn, W, D)
    N = W * D
    valid = res.level_valid.reshape(-1)
    token = jnp.where(valid, res.level_tokens.reshape(-1), 0).astype(jnp.int32)
    lvl = np.repeat(np.arange(D), W)
    par_slot = res.level_parents.reshape(-1)
    parent = jnp.where(valid & (lvl > 0), (lvl - 1) * W + par_slot, -1).astype(jnp.int32)
    depth_arr = jnp.where(valid, jnp.asarray(lvl + 1, jnp.int32), 0)
    # children: row 0 -> level-0 slots; row (t*W + j + 1) -> level t+1 slots with parent j,
    # in slot order (= decreasing perturbed score)
    # root children: the level-1 slots (top_k puts the valid ones first)
    rows = [jnp.where(res.level_valid[0], jnp.arange(W), -1)[None]]
    for t in range(D):
        if t + 1 < D:
            mask = (res.level_parents[t + 1][None, :] == jnp.arange(W)[:, None]) & res.level_valid[t + 1][None, :]
            mask = mask & res.level_valid[t][:, None]
        else:
            mask = jnp.zeros((W, W), bool)
        # stable compaction: valid children first, in slot order (= decreasing score)
        order = jnp.argsort(~mask, axis=1, stable=True)
        rows.append(jnp.where(jnp.take_along_axis(mask, order, axis=1), (t + 1) * W + order, -1))
    children = jnp.concatenate(rows, axis=0).astype(jnp.int32)
    num = jnp.sum(children >= 0, axis=1).astype(jnp.int32)
    lq = [s.astype(dtype) for s in seen]  # level t: [W, V] (level 0: row 0 is the root)
    root_q = jnp.exp(lq[0][0])[None]
    node_q = [jnp.where(res.level_valid[t][:, None], jnp.exp(lq[t + 1]), 1.0 / V) for t in range(D - 1)]
    node_q.append(jnp.full((W, V), 1.0 / V, dtype))
    q = jnp.concatenate([root_q] + node_q, axis=0)
    return DraftTree(token, parent, depth_arr, children, num, valid, "without_replacement", D), q


def node_paths(tree: DraftTree) -> list:
    r"""The token path (tuple) of every node of a concrete tree; ``None`` for unused slots.

    .. math:: \mathrm{path}(i) = \mathrm{path}(\mathrm{parent}(i)) \,\|\, \mathrm{token}(i)

    >>> node_paths(tree_from_parents([2, 0, 1], [-1, 0, 0], "iid"))
    [(2,), (2, 0), (2, 1)]

    References:
      Miao et al., SpecInfer (arXiv 2305.09781), Sec. 4.
    """
    token = np.asarray(tree.token)
    parent = np.asarray(tree.parent)
    valid = np.asarray(tree.valid)
    paths: list = []
    for i in range(token.shape[0]):
        if not valid[i]:
            paths.append(None)
        else:
            base = () if parent[i] < 0 else paths[parent[i]]
            paths.append(base + (int(token[i]),))
    return paths


def table_laws(model, tree: DraftTree, *, prefix=()) -> np.ndarray:
    r"""Next-token laws of a :class:`~spectheory.models.TableLM` at every row of a concrete
    tree (root, then node ``i`` at row ``i + 1``), float64[N+1, V]; unused slots get the
    uniform law. Use it for the target laws ``p`` of :func:`tree_verify`:

    .. math:: \mathrm{laws}[0] = P(\cdot \mid c), \qquad
        \mathrm{laws}[i + 1] = P(\cdot \mid c\, \mathrm{path}(i)).

    >>> from spectheory.models import TableLM
    >>> table_laws(TableLM.context_free([0.5, 0.5]), tree_from_parents([1], [-1], "iid")).shape
    (2, 2)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781) (one target call scores every tree node).
    """
    prefix = tuple(int(t) for t in prefix)
    V = model.vocab_size
    rows = [model.next_law(prefix)]
    for path in node_paths(tree):
        rows.append(np.full(V, 1.0 / V) if path is None else model.next_law(prefix + path))
    return np.stack(rows)
