"""Draft trees as static arrays: the children table, level-by-level growth, and the builders
that draw trees from a draft model."""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _registry
from spectheory import _validation as _v
from spectheory import drafts as _drafts  # noqa: F401  (registers the built-in schemes)
from spectheory._registry import DraftScheme
from spectheory.models._table import check_ids, check_table_lm
from spectheory.sampling._beam import stochastic_beam_search_with_gumbels


class DraftTree(NamedTuple):
    """A draft tree over ``N`` node slots, as arrays usable under ``jit`` and ``vmap``.

    The *root* is the context (the accepted prefix): it is not a node slot. Node ``i`` is a
    drafted token; its path from the root is the draft sequence it stands for. Rows of the
    per-node law arrays ``p``/``q`` passed to the verifier are indexed by *row* = node + 1,
    row 0 being the root. Slots are in level order (all depth-1 nodes first); unused slots
    (``valid`` false) carry token 0, parent -1, depth 0 and no children. A batch of trees
    (from :func:`grow_tree`, or ``vmap``) has one more leading axis on every array.

    Attributes:
      token: the drafted token of each node.  # shape=(N,), dtype=int32
      parent: parent node index; ``-1`` for children of the root (and unused slots).
        # shape=(N,), dtype=int32
      depth: number of drafted tokens on the path, 1 for root children, 0 for unused slots.
        # shape=(N,), dtype=int32
      children: ``children[r]`` lists the node indices of the children of row ``r`` (row 0:
        the root, row ``i + 1``: node ``i``) in increasing node index, which is *draft order*
        (the order of the multi-draft tuple the node rule is given) for every builder; padded
        with -1 (see :func:`children_table`).  # shape=(N+1, width), dtype=int32
      num_children: number of children of each row.  # shape=(N+1,), dtype=int32
      valid: whether the slot holds a node.  # shape=(N,), dtype=bool
      scheme: the :class:`spectheory.DraftScheme` whose children law the tree's children
        follow given their parent (static; the node rule must assume it:
        :func:`~spectheory.trees.check_pairing`), e.g. ``spectheory.drafts.IID`` (SpecInfer,
        SpecTr), ``WITHOUT_REPLACEMENT`` (RSD-C, RSD-S) or ``GREEDY`` (Hu et al. 2025).
      max_depth: static largest depth ``D``.
    """

    token: jax.Array
    parent: jax.Array
    depth: jax.Array
    children: jax.Array
    num_children: jax.Array
    valid: jax.Array
    scheme: DraftScheme
    max_depth: int


jax.tree_util.register_pytree_node(
    DraftTree,
    lambda t: ((t.token, t.parent, t.depth, t.children, t.num_children, t.valid), (t.scheme, t.max_depth)),
    lambda aux, ch: DraftTree(*ch, *aux),
)


def _as_scheme(scheme, *, children: bool = False) -> DraftScheme:
    """Resolve ``scheme`` (object or registered name); ``ValueError`` naming ``scheme``."""
    try:
        s = _registry.scheme(scheme)
    except TypeError as e:
        raise ValueError(f"scheme: {e}") from None
    if children and s.children is None:
        raise ValueError(f"scheme: draft scheme {s.name!r} has no tree child sampler (children is None), "
                         "so a draft tree cannot carry it")
    return s


def _check_tree(tree, name: str = "tree", *, concrete: bool = False) -> DraftTree:
    """Check that ``tree`` is a :class:`DraftTree` with consistent array shapes (and concrete
    arrays when ``concrete``); ``TypeError``/``ValueError`` naming the argument."""
    if not isinstance(tree, DraftTree):
        raise TypeError(f"{name}: expected a spectheory.trees.DraftTree, got {type(tree).__name__}")
    arrays = (tree.token, tree.parent, tree.depth, tree.children, tree.num_children, tree.valid)
    if concrete and not all(_v.is_concrete(a) for a in arrays):
        raise TypeError(f"{name}: expected a concrete tree (host-side function), got traced arrays")
    N = tree.token.shape[-1] if tree.token.ndim else -1
    shapes_ok = (tree.token.ndim >= 1 and tree.parent.shape == tree.token.shape
                 and tree.depth.shape == tree.token.shape and tree.valid.shape == tree.token.shape
                 and tree.children.ndim == tree.token.ndim + 1 and tree.children.shape[-2] == N + 1
                 and tree.num_children.shape == tree.children.shape[:-1])
    if not shapes_ok:
        raise ValueError(f"{name}: inconsistent DraftTree arrays (token {tuple(jnp.shape(tree.token))}, parent "
                         f"{tuple(jnp.shape(tree.parent))}, children {tuple(jnp.shape(tree.children))})")
    if not jnp.issubdtype(tree.token.dtype, jnp.integer):
        raise ValueError(f"{name}.token: expected integer token ids, got dtype {tree.token.dtype}")
    return tree


def _check_width(width, name: str = "width") -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"{name}: expected a positive Python int (static), got {width!r}")
    return int(width)


# --- the children table ---------------------------------------------------------------------


def _children_table_1d(parent, valid, width):
    N = parent.shape[0]
    ok = valid & (parent >= -1) & (parent < N)
    row = jnp.where(ok, parent + 1, N + 1).astype(jnp.int32)  # row N + 1: not a node
    order = jnp.argsort(row, stable=True).astype(jnp.int32)  # grouped by row, increasing index
    srow = row[order]
    counts = jnp.zeros((N + 2,), jnp.int32).at[row].add(1)
    start = jnp.cumsum(counts) - counts
    rank = jnp.arange(N, dtype=jnp.int32) - start[srow]
    children = jnp.full((N + 1, width), -1, jnp.int32).at[srow, rank].set(order, mode="drop")
    return children, jnp.minimum(counts[:N + 1], width).astype(jnp.int32)


def children_table(parent, valid, width: int) -> tuple[jax.Array, jax.Array]:
    r"""The children table of a tree (or a batch of trees) from its parent array.

    Row ``r`` of the table is the root (``r = 0``) or node ``r - 1``; it lists the valid nodes
    whose parent row is ``r``, in increasing node index, padded with -1:

    .. math:: \mathrm{children}[r] = \big(i : \mathrm{valid}_i,\ \mathrm{parent}_i + 1 = r\big)
        \text{ in increasing } i, \qquad \mathrm{num\_children}[r] = |\mathrm{children}[r]|.

    Every builder numbers siblings in draft order, so this is the order of the multi-draft
    tuple a node rule verifies. Pure ``jnp`` (a stable sort and a scatter), batched over the
    leading axes, jit-clean for a static ``width``. Eager calls raise on a valid slot whose
    parent is not ``-1`` or an earlier slot; under ``jit``/``vmap`` (no raising) invalid slots
    and parents outside ``[-1, N)`` are ignored. Children beyond ``width`` are dropped
    (``num_children`` is capped at ``width``; :func:`tree_from_parents` checks the width on
    the host).

    Args:
      parent: int[..., N] parent node index of each slot, ``-1`` for children of the root.
      valid: bool[..., N] whether the slot holds a node.
      width: static number of columns (the largest fan-out).

    Returns:
      ``(children int32[..., N+1, width], num_children int32[..., N+1])``.

    Raises:
      ValueError: on mismatched shapes or dtypes, a bad ``width``, and (eager calls) a valid
        slot whose parent is not ``-1`` or an earlier slot (the builders' level order).

    >>> import jax.numpy as jnp
    >>> ch, num = children_table(jnp.array([-1, -1, 0, 0, 1]), jnp.array([True, True, True, False, True]), 2)
    >>> ch.tolist(), num.tolist()
    ([[0, 1], [2, -1], [4, -1], [-1, -1], [-1, -1], [-1, -1]], [2, 1, 1, 0, 0, 0])

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781), Sec. 4 (token trees).
    """
    width = _check_width(width)
    parent = jnp.asarray(parent) if _v.is_concrete(parent) else parent
    valid = jnp.asarray(valid) if _v.is_concrete(valid) else valid
    if parent.ndim < 1:
        raise ValueError(f"parent: expected int[..., N], got shape {tuple(parent.shape)}")
    if not jnp.issubdtype(parent.dtype, jnp.integer):
        raise ValueError(f"parent: expected an integer array, got dtype {parent.dtype}")
    if valid.shape != parent.shape:
        raise ValueError(f"valid: expected shape {tuple(parent.shape)} (as parent), got {tuple(valid.shape)}")
    if valid.dtype != bool:
        raise ValueError(f"valid: expected a bool array, got dtype {valid.dtype}")
    lead, N = tuple(parent.shape[:-1]), int(parent.shape[-1])
    if _v.is_concrete(parent) and _v.is_concrete(valid) and parent.size:
        par, ok = np.asarray(parent).reshape(-1, N), np.asarray(valid).reshape(-1, N)
        bad = ok & ~((par >= -1) & (par < np.arange(N)))
        if np.any(bad):
            b = np.argwhere(bad)[0]
            raise ValueError(f"parent: valid slot {int(b[-1])} has parent {int(par[tuple(b)])}; expected -1 or an "
                             "earlier slot (level order)")
    size = int(np.prod(lead, dtype=np.int64))
    ch, num = _children_table_batched(parent.reshape((size, N)).astype(jnp.int32),
                                      valid.reshape((size, N)).astype(bool), width)
    return ch.reshape(lead + (N + 1, width)), num.reshape(lead + (N + 1,))


@functools.partial(jax.jit, static_argnames=("children", "b"))
def _draw_children(keys, logq, children, b):
    """``b`` children for every row of ``logq[M, V]``, one key each (one compilation per shape)."""
    return jax.vmap(lambda k_, l_: children(k_, l_, b))(keys, logq)


@functools.partial(jax.jit, static_argnames="width")
def _children_table_batched(parent, valid, width):
    return jax.vmap(lambda pa, va: _children_table_1d(pa, va, width))(parent, valid)


def tree_from_parents(token: Sequence[int], parent: Sequence[int], scheme: Union[str, DraftScheme], *,
                      max_children: Optional[int] = None) -> DraftTree:
    r"""Build a :class:`DraftTree` on the host from token and parent lists.

    Children are listed in increasing node index (so list siblings in draft order; see
    :func:`children_table`), and

    .. math:: \mathrm{depth}(i) = 1 \text{ if } \mathrm{parent}(i) = -1, \quad
        \mathrm{depth}(\mathrm{parent}(i)) + 1 \text{ otherwise}.

    Args:
      token: int[N] drafted tokens.
      parent: int[N] parent node index, ``-1`` for children of the root; a parent must come
        before its children.
      scheme: the children's draft scheme: a :class:`spectheory.DraftScheme` or a registered
        name (see :func:`spectheory.drafts.scheme`).
      max_children: width of the ``children`` table (default: the largest fan-out).

    Returns:
      :class:`DraftTree` (concrete arrays).

    Raises:
      ValueError: unknown ``scheme``, no nodes, non-integer or negative tokens, mismatched
        lengths, a parent after its child, or a ``max_children`` below the largest fan-out.

    >>> t = tree_from_parents([2, 0, 1], [-1, 0, 0], "iid")
    >>> t.children.tolist(), t.depth.tolist(), t.max_depth, t.scheme.name
    ([[0, -1], [1, 2], [-1, -1], [-1, -1]], [1, 2, 2], 2, 'iid')

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781), Sec. 4 (token trees).
    """
    s = _as_scheme(scheme)
    token = _int_list(token, "token")
    parent = _int_list(parent, "parent")
    N = token.shape[0]
    if N == 0:
        raise ValueError("token: expected at least one node")
    if np.any(token < 0):
        raise ValueError(f"token: expected non-negative token ids, got {token.tolist()}")
    if parent.shape != (N,):
        raise ValueError(f"parent: expected the same length as token ({N}), got {parent.shape[0]}")
    depth = np.zeros(N, np.int32)
    for i in range(N):
        if not -1 <= parent[i] < i:
            raise ValueError(f"parent[{i}] = {parent[i]}: a parent must precede its children (or be -1)")
        depth[i] = 1 if parent[i] < 0 else depth[parent[i]] + 1
    fan = np.bincount(parent + 1, minlength=N + 1)
    widest = int(max(fan.max(initial=0), 1))
    if max_children is None:
        width = widest
    else:
        width = _check_width(max_children, "max_children")
        if width < widest:
            raise ValueError(f"max_children={width} is smaller than the largest fan-out {widest}")
    children, num = children_table(jnp.asarray(parent), jnp.ones((N,), bool), width)
    return DraftTree(jnp.asarray(token), jnp.asarray(parent), jnp.asarray(depth), children, num,
                     jnp.ones(N, bool), s, int(depth.max(initial=0)))


def _int_list(x, name: str) -> np.ndarray:
    """A host-side 1-d int list (``int32[N]``), else ``ValueError``/``TypeError`` naming it."""
    if not _v.is_concrete(x):
        raise TypeError(f"{name}: expected concrete ints (host side), got a traced array")
    arr = np.asarray(x)
    if arr.size == 0:
        return np.zeros(0, np.int32)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected a 1-d sequence of ints, got {x!r}")
    if arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{name}: values do not fit int32")
    return arr.astype(np.int32)


# --- growth -----------------------------------------------------------------------------------


def _level_sizes(branching):
    """Static level-order layout of the full tree: level sizes, level starts, ``N``."""
    sizes, n = [], 1
    for b in branching:
        n *= b
        sizes.append(n)
    starts = [0]
    for s in sizes[:-1]:
        starts.append(starts[-1] + s)
    return sizes, starts, int(sum(sizes))


def grow_tree(key, scheme: Union[str, DraftScheme], branching: Sequence[int], root_logq,
              expand: Callable, *, active=None) -> tuple[DraftTree, jax.Array]:
    r"""Grow a batch of ``B`` draft trees level by level, the children of every node drawn by
    ``scheme.children`` from the node's draft law.

    The tree has a fixed level-order layout: level ``t`` (depth ``t + 1``) holds
    :math:`b_1 \cdots b_{t+1}` slots, ``branching[t]`` consecutive slots per slot of level
    ``t - 1`` (the root for ``t = 0``), so :math:`N = b_1 + b_1 b_2 + \dots + b_1 \cdots b_D`
    and the slots of level ``t`` are ``lo..hi-1``, ``lo`` the number of slots above it. A slot
    is valid iff its parent is valid and the scheme drew it (fewer than ``b`` valid children
    when a scheme drawing distinct tokens meets a smaller support:
    :meth:`spectheory.DraftScheme.children_law`). For every node :math:`s` with draft law
    :math:`q(\cdot \mid s)`:

    .. math:: (c_1, \dots, c_b) \sim \mathrm{scheme.children}\big(k_s, \log q(\cdot \mid s), b\big),

    with the keys ``keys = jax.random.split(key, D)`` and, at level ``t``, the ``B * M``
    parents (``M`` per row, row-major: parent ``m`` of row ``r`` is ``r * M + m``) taking
    ``jax.random.split(keys[t], B * M)`` under ``jax.vmap(scheme.children)``. For ``B = 1``
    this is exactly :func:`draft_tree` (so row ``r`` of a batch is *not* the ``B = 1`` tree of
    the same key; every row is an independent draw).

    ``expand`` supplies the draft laws of the nodes just drawn. It is called once per level
    except the last, after level ``t`` is drawn, as

    ``expand(t, token int32[B, hi], parent int32[B, hi], valid bool[B, hi], lo, hi) ->
    float[B, hi - lo, V]``

    (``t``, ``lo``, ``hi`` Python ints) with the whole tree so far (slots ``0..hi-1``; invalid
    slots carry token 0 and parent -1) and must return the log draft laws
    :math:`\log q(\cdot \mid \mathrm{path}(i))` of slots ``i = lo..hi-1``: a tree-mode draft
    call scoring the tree with ``parent`` as its attention layout, or a lookup by path. Rows of
    invalid slots are ignored (any values). ``grow_tree`` is not jitted as a whole: ``expand``
    may run on the host (it receives concrete ``jax.Array`` values when ``grow_tree`` is called
    eagerly, and may return NumPy); when ``expand`` is traceable, ``grow_tree`` is jit-clean.

    Args:
      key: a ``jax.random`` key.
      scheme: the children's draft scheme (object or registered name); it needs ``children``.
      branching: static per-level fan-outs ``(b_1, ..., b_D)``.
      root_logq: float[B, V], the log draft law at the root of every row (the law of the
        root's children).
      expand: the callback above.
      active: optional bool[B]; rows that are false get no valid node (and uniform ``q``
        rows). Keys are drawn for every row regardless, so active rows do not depend on it.

    Returns:
      ``(tree, q)``: a batched :class:`DraftTree` (every array with leading axis ``B``;
      ``scheme`` and ``max_depth = D`` static; children tables of width ``max(branching)``
      from :func:`children_table`) and ``q: float[B, N+1, V]``, the draft law of every row
      (row 0 the root, row ``i + 1`` node ``i``); rows of the last level and of invalid slots
      are the uniform placeholder ``1/V`` (never read by the verifier).

    Raises:
      ValueError: a bad ``key``, a scheme without ``children``, bad ``branching``,
        ``root_logq`` not float ``[B, V]`` (eager: NaN, ``+inf`` or an all ``-inf`` row),
        ``active`` not bool[B], or ``expand`` returning the wrong shape.
      TypeError: ``expand`` not callable (it may be ``None`` for a single level).

    >>> import jax, jax.numpy as jnp
    >>> root = jnp.log(jnp.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    >>> expand = lambda t, tok, par, ok, lo, hi: jnp.log(jax.nn.one_hot(tok[:, lo:hi], 3))
    >>> tree, q = grow_tree(jax.random.key(0), "without_replacement", (2, 1), root, expand)
    >>> tree.token.shape, q.shape, tree.num_children[:, 0].tolist()
    ((2, 4), (2, 5, 3), [2, 1])
    >>> tree.token[1].tolist(), tree.valid[1].tolist()
    ([2, 0, 2, 0], [True, False, True, False])

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781); Jeon et al., Recursive
      Speculative Decoding (arXiv 2402.14160), RSD-C; Hu et al., ICLR 2025
      (arXiv 2502.18779) (greedy children).
    """
    key = _v.check_key(key)
    s = _as_scheme(scheme, children=True)
    branching = _v.check_branching(branching)
    if len(branching) > 1 or expand is not None:  # one level never calls expand
        _v.check_callable(expand, "expand")
    root = jnp.asarray(root_logq) if _v.is_concrete(root_logq) else root_logq
    if root.ndim != 2 or root.shape[-1] < 1:
        raise ValueError(f"root_logq: expected float[B, V], got shape {tuple(root.shape)}")
    root = _v.as_logits(root, "root_logq", ndim=2)
    B, V = int(root.shape[0]), int(root.shape[1])
    sizes, starts, N = _level_sizes(branching)
    D = len(branching)
    if active is None:
        alive = jnp.ones((B, 1), bool)
    else:
        act = jnp.asarray(active) if _v.is_concrete(active) else active
        if act.shape != (B,) or act.dtype != bool:
            raise ValueError(f"active: expected bool[{B}], got {act.dtype}{list(act.shape)}")
        alive = act.astype(bool)[:, None]
    keys = jax.random.split(key, D)
    logq = root[:, None, :]
    tokens, parents, valids, q_rows = [], [], [], []
    for t, b in enumerate(branching):
        M = logq.shape[1]
        logq = logq.astype(jnp.result_type(logq.dtype, jnp.float32))
        q_rows.append(jnp.where(alive[..., None], jnp.exp(logq), 1.0 / V))
        kk = jax.random.split(keys[t], B * M)
        tok, ok = _draw_children(kk, logq.reshape(B * M, V), s.children, b)
        ok = (ok.reshape(B, M, b) & alive[:, :, None]).reshape(B, M * b)
        tok = tok.reshape(B, M * b)
        par = np.full(M * b, -1) if t == 0 else np.repeat(np.arange(M) + starts[t - 1], b)
        tokens.append(jnp.where(ok, tok, 0).astype(jnp.int32))
        parents.append(jnp.where(ok, jnp.asarray(par, jnp.int32)[None, :], -1).astype(jnp.int32))
        valids.append(ok)
        alive = ok
        if t + 1 < D:
            lo, hi = starts[t], starts[t] + sizes[t]
            out = expand(t, jnp.concatenate(tokens, 1), jnp.concatenate(parents, 1), jnp.concatenate(valids, 1),
                         lo, hi)
            out = jnp.asarray(out) if _v.is_concrete(out) else out
            if tuple(out.shape) != (B, hi - lo, V):
                raise ValueError(f"expand: expected shape ({B}, {hi - lo}, {V}) at level {t}, got {tuple(out.shape)}")
            logq = out
    token = jnp.concatenate(tokens, 1)
    parent = jnp.concatenate(parents, 1)
    valid = jnp.concatenate(valids, 1)
    depth_of = np.repeat(np.arange(1, D + 1), sizes).astype(np.int32)
    depth = jnp.where(valid, jnp.asarray(depth_of)[None, :], 0).astype(jnp.int32)
    children, num = children_table(parent, valid, max(branching))
    q = jnp.concatenate(q_rows + [jnp.full((B, sizes[-1], V), 1.0 / V, q_rows[0].dtype)], axis=1)
    return DraftTree(token, parent, depth, children, num, valid, s, D), q


def _level_paths(branching) -> list[np.ndarray]:
    """For every level ``t``: int[sizes[t], t + 1], the slots on the path of each slot."""
    sizes, starts, _ = _level_sizes(branching)
    paths = [np.arange(sizes[0])[:, None]]
    for t in range(1, len(branching)):
        j = np.arange(sizes[t])
        paths.append(np.concatenate([paths[-1][j // branching[t]], (starts[t] + j)[:, None]], axis=1))
    return paths


def draft_tree(key, scheme: Union[str, DraftScheme], log_probs_fn: Callable, branching: Sequence[int],
               vocab_size: int) -> tuple[DraftTree, jax.Array]:
    r"""Draw one draft tree from a draft model, the children of every node by ``scheme``.

    Every node :math:`s` at depth :math:`t` (the root at depth 0) gets ``branching[t]``
    children drawn by ``scheme.children`` from :math:`q(\cdot \mid s)`:

    * ``"iid"`` (SpecInfer, SpecTr): :math:`c_1, \dots, c_b \overset{iid}{\sim} q`;
    * ``"without_replacement"`` (RSD-C): Gumbel-top-``b``, ordered draws without replacement,
      :math:`P(c_1..c_b) = \prod_j q(c_j \mid s) / (1 - \sum_{l<j} q(c_l \mid s))` (fewer
      valid children when :math:`q` has fewer than ``b`` tokens of positive mass);
    * ``"greedy"`` (Hu et al. 2025): the ``b - 1`` most likely tokens, then one draw from
      :math:`q` restricted to the others.

    A thin wrapper over :func:`grow_tree` with ``B = 1`` whose ``expand`` looks up every new
    node's path in ``log_probs_fn``; jit-clean when ``log_probs_fn`` is.

    Args:
      key: a ``jax.random`` key.
      scheme: a :class:`spectheory.DraftScheme` with ``children``, or its registered name.
      log_probs_fn: ``prefixes int32[M, t] -> float[M, V]`` next-token log-probabilities of
        the draft model (e.g. :func:`spectheory.sampling.table_log_probs_fn`).
      branching: static per-level branching ``(b_1, ..., b_D)``; ``N = b_1 + b_1 b_2 + ...``.
      vocab_size: static ``V``.

    Returns:
      ``(tree, q)``: the :class:`DraftTree` (``tree.scheme`` the scheme) and the draft law at
      every row, float[N+1, V] (rows of nodes without children are uniform placeholders,
      never used).

    Raises:
      ValueError: a bad ``key`` or ``vocab_size``, a scheme without ``children`` (e.g.
        ``"hub"``), bad ``branching``, or ``log_probs_fn`` returning the wrong shape.
      TypeError: ``log_probs_fn`` not callable.

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.5, 0.0]), 2)
    >>> tree, q = draft_tree(jax.random.key(0), "without_replacement", fn, (3, 1), 3)
    >>> tree.parent.tolist(), q.shape, tree.num_children.tolist()[:1], int(tree.valid.sum())
    ([-1, -1, -1, 0, 1, -1], (7, 3), [2], 4)
    >>> fn = table_log_probs_fn(TableLM.context_free([0.2, 0.5, 0.3]), 1)
    >>> tree, q = draft_tree(jax.random.key(0), "greedy", fn, (2,), 3)
    >>> int(tree.token[0])
    1

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781); Sun et al., SpecTr, NeurIPS 2023
      (arXiv 2310.15141); Jeon et al., Recursive Speculative Decoding (arXiv 2402.14160),
      RSD-C; Kool et al., ICML 2019 (arXiv 1903.06059); Hu et al., Towards Optimal Multi-draft
      Speculative Decoding, ICLR 2025 (arXiv 2502.18779).
    """
    key = _v.check_key(key)
    s = _as_scheme(scheme, children=True)
    branching = _v.check_branching(branching)
    _v.check_callable(log_probs_fn, "log_probs_fn")
    V = _v.check_count(vocab_size, "vocab_size")
    root = jnp.asarray(log_probs_fn(jnp.zeros((1, 0), jnp.int32)))
    if tuple(root.shape) != (1, V):
        raise ValueError(f"log_probs_fn: expected shape (1, {V}), got {tuple(root.shape)}")
    paths = _level_paths(branching)

    def expand(t, token, parent, valid, lo, hi):
        prefixes = token[0][jnp.asarray(paths[t])]  # [hi - lo, t + 1]
        out = jnp.asarray(log_probs_fn(prefixes))
        if tuple(out.shape) != (hi - lo, V):
            raise ValueError(f"log_probs_fn: expected shape ({hi - lo}, {V}), got {tuple(out.shape)}")
        return out[None]

    tree, q = grow_tree(key, s, branching, root, expand)
    return jax.tree_util.tree_map(lambda a: a[0], tree), q[0]


def beam_tree(key, log_probs_fn: Callable, beam_width: int, depth: int, vocab_size: int):
    r"""The draft tree of stochastic beam search (RSD-S): every beam kept at every level.

    Runs :func:`spectheory.sampling.stochastic_beam_search`; node ``t * W + w`` is beam slot
    ``w`` at level ``t + 1``. Siblings are listed in slot order, i.e. decreasing perturbed
    log-probability, which orders them as draws without replacement from the parent's draft
    law (the tree carries :data:`spectheory.drafts.WITHOUT_REPLACEMENT`); the number of
    children varies from node to node (0 to ``W``). The level-``t`` beam is the top ``W`` of

    .. math:: G(s) = \max_{s' \succeq s,\ |s'| = D} \big(\log q(s') + g_{s'}\big),
        \qquad |s| = t.

    Args:
      key: a ``jax.random`` key.
      log_probs_fn: ``prefixes int32[W, t] -> float[W, V]``.
      beam_width: static ``W``. depth: static ``D``. vocab_size: static ``V``.

    Returns:
      ``(tree, q)`` with ``N = W * D`` slots and the without-replacement scheme; ``q`` is
      float[N+1, V].

    Raises:
      ValueError: a bad ``key``, ``beam_width``, ``depth`` or ``vocab_size``, or as
        :func:`spectheory.sampling.stochastic_beam_search_with_gumbels`.
      TypeError: ``log_probs_fn`` not callable.

    >>> import jax
    >>> from spectheory.models import TableLM
    >>> from spectheory.sampling import table_log_probs_fn
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.3, 0.2]), 2)
    >>> tree, q = beam_tree(jax.random.key(0), fn, 2, 2, 3)
    >>> tree.token.shape, q.shape, int(tree.num_children[0]), tree.scheme.name
    ((4,), (5, 3), 2, 'without_replacement')

    References:
      Jeon et al. (arXiv 2402.14160), RSD-S; Kool et al., ICML 2019 (arXiv 1903.06059).
    """
    key = _v.check_key(key)
    _v.check_callable(log_probs_fn, "log_probs_fn")
    W, D = _v.check_count(beam_width, "beam_width"), _v.check_count(depth, "depth")
    V = _v.check_count(vocab_size, "vocab_size")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    g = jax.random.gumbel(key, (D, W, V), dtype)
    # record the draft law at every kept prefix while the search runs
    seen = []

    def fn(prefixes):
        out = jnp.asarray(log_probs_fn(prefixes))
        seen.append(out)
        return out

    res = stochastic_beam_search_with_gumbels(g, fn, W, D)
    valid = res.level_valid.reshape(-1)
    token = jnp.where(valid, res.level_tokens.reshape(-1), 0).astype(jnp.int32)
    lvl = np.repeat(np.arange(D), W)
    par_slot = res.level_parents.reshape(-1)
    parent = jnp.where(valid & (lvl > 0), (lvl - 1) * W + par_slot, -1).astype(jnp.int32)
    depth_arr = jnp.where(valid, jnp.asarray(lvl + 1, jnp.int32), 0)
    children, num = children_table(parent, valid, W)
    lq = [s.astype(dtype) for s in seen]  # level t: [W, V] (level 0: row 0 is the root)
    root_q = jnp.exp(lq[0][0])[None]
    node_q = [jnp.where(res.level_valid[t][:, None], jnp.exp(lq[t + 1]), 1.0 / V) for t in range(D - 1)]
    node_q.append(jnp.full((W, V), 1.0 / V, dtype))
    q = jnp.concatenate([root_q] + node_q, axis=0)
    return DraftTree(token, parent, depth_arr, children, num, valid, _drafts.WITHOUT_REPLACEMENT, D), q


def node_paths(tree: DraftTree) -> list:
    r"""The token path (tuple) of every node of a concrete tree; ``None`` for unused slots.

    .. math:: \mathrm{path}(i) = \mathrm{path}(\mathrm{parent}(i)) \,\|\, \mathrm{token}(i)

    Args:
      tree: a concrete, unbatched :class:`DraftTree`.

    Returns:
      ``list[tuple[int, ...] | None]`` of length ``N``.

    Raises:
      TypeError: ``tree`` not a concrete :class:`DraftTree`.
      ValueError: a batched or malformed tree (a valid node whose parent is not an earlier
        valid node).

    >>> node_paths(tree_from_parents([2, 0, 1], [-1, 0, 0], "iid"))
    [(2,), (2, 0), (2, 1)]

    References:
      Miao et al., SpecInfer (arXiv 2305.09781), Sec. 4.
    """
    _check_tree(tree, concrete=True)
    if tree.token.ndim != 1:
        raise ValueError(f"tree: expected one tree (1-d arrays), got token shape {tuple(tree.token.shape)}")
    token = np.asarray(tree.token)
    parent = np.asarray(tree.parent)
    valid = np.asarray(tree.valid)
    paths: list = []
    for i in range(token.shape[0]):
        if not valid[i]:
            paths.append(None)
        else:
            if not (parent[i] == -1 or (0 <= parent[i] < i and paths[parent[i]] is not None)):
                raise ValueError(f"tree: node {i} has parent {int(parent[i])}; expected -1 or an earlier valid node")
            base = () if parent[i] < 0 else paths[parent[i]]
            paths.append(base + (int(token[i]),))
    return paths


def table_laws(model, tree: DraftTree, *, prefix=()) -> np.ndarray:
    r"""Next-token laws of a :class:`~spectheory.models.TableLM` at every row of a concrete
    tree (root, then node ``i`` at row ``i + 1``), float64[N+1, V]; unused slots get the
    uniform law. Use it for the target laws ``p`` of :func:`tree_verify`:

    .. math:: \mathrm{laws}[0] = P(\cdot \mid c), \qquad
        \mathrm{laws}[i + 1] = P(\cdot \mid c\, \mathrm{path}(i)).

    Args:
      model: a :class:`~spectheory.models.TableLM` over ``V`` tokens.
      tree: a concrete, unbatched :class:`DraftTree` with tokens in ``[0, V)``.
      prefix: the context, int token ids in ``[0, V)``.

    Returns:
      float64[N+1, V].

    Raises:
      TypeError: ``model`` not a ``TableLM`` or ``tree`` not a concrete ``DraftTree``.
      ValueError: tokens or ``prefix`` out of range, or a malformed tree.

    >>> from spectheory.models import TableLM
    >>> table_laws(TableLM.context_free([0.5, 0.5]), tree_from_parents([1], [-1], "iid")).shape
    (2, 2)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781) (one target call scores every tree node).
    """
    V = check_table_lm(model, "model").vocab_size
    prefix = check_ids(prefix, V, "prefix")
    _check_tree(tree, concrete=True)
    _v.as_tokens(tree.token, "tree.token", V)
    rows = [model.next_law(prefix)]
    for path in node_paths(tree):
        rows.append(np.full(V, 1.0 / V) if path is None else model.next_law(prefix + path))
    return np.stack(rows)
