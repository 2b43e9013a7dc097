"""The causal-language-model contract that speculative generation is built on (private).

A :class:`CausalLM` turns a batch of token sequences into next-token logits and keeps an
incremental *cache* of what it has already read. The contract is framework-neutral: token
arrays go in, ``jax.Array`` logits come out, and the cache is an opaque value that the model
alone interprets. :class:`~spectheory.models.HFCausalLM` (any ``transformers`` causal LM, with
its KV cache) and :class:`~spectheory.models.JaxCausalLM` (any JAX function
``(params, tokens) -> logits``) implement it.

The bookkeeping helpers below (tree ancestry, positions and masks of a call) are written once
against the NumPy API and run on either ``numpy`` (host side, for the torch adapter) or
``jax.numpy`` (traceable, for the JAX adapter): pass the module as ``xp``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory import _validation as _v

__all__ = [
    "CausalLM",
    "chain_parents",
    "tree_ancestors",
    "tree_depths",
    "tree_paths",
]


@runtime_checkable
class CausalLM(Protocol):
    r"""Next-token logits for a batch of sequences, with an incremental cache.

    **State.** A cache holds, for every row ``b`` of the batch, a *committed prefix* of
    ``lengths(cache)[b]`` tokens; the logical position of a token is its index in that prefix
    (0-based). Rows are independent and may have different lengths (ragged batches).

    **Calls.** ``logits(tokens[B, T], cache, valid=None, parents=None)`` scores ``T`` new tokens
    per row against that row's committed prefix and returns ``(logits float[B, T, V], cache')``
    (float32 from :class:`HFCausalLM`; the wrapped function's dtype from :class:`JaxCausalLM`):

    * *Chain mode* (``parents is None``). The valid tokens of row ``b`` (``valid[b]``, default
      all true) are appended, in order, to its prefix; ``logits[b, t]`` is the next-token logits
      after ``prefix + valid tokens of row b up to and including t``, and
      ``lengths(cache')[b] = lengths(cache)[b] + valid[b].sum()``. Invalid entries are padding:
      they take no position and nothing attends to them, so a ragged batch can be written
      left-padded, right-padded or with holes. Scoring a chain of ``γ`` drafts (plus the last
      committed-but-unscored token) is one call with ``T = γ + 1``.
    * *Tree mode* (``parents`` an ``int[T]`` or ``int[B, T]`` array). Node ``i`` of the call is
      ``tokens[b, i]``; its parent is node ``parents[i]`` of the same call, or the end of the
      committed prefix when ``parents[i] == -1`` (a root). Nodes are topologically ordered:
      ``-1 <= parents[i] < i``. ``logits[b, i]`` is the next-token logits after
      ``prefix + (path of nodes from its root down to i)``; node ``i`` sits at position
      ``lengths[b] + depth[i]`` (``depth`` of a root is 0). The whole tree is one target pass
      (one attention mask: each node sees the prefix and its own ancestors). The nodes are
      *tentative*: ``lengths`` is unchanged, and only :meth:`commit`, called right after, can
      append some of them. Invalid nodes (``valid[b, i] == False``) are padding for rows whose
      tree is smaller; no valid node may descend from an invalid one.

    Logits at invalid entries are unspecified (finite, never read).

    **Rollback.** ``rollback(cache, lengths)`` truncates each row to its first ``lengths[b]``
    tokens (``0 <= lengths[b] <= lengths(cache)[b]``): after a chain of ``γ + 1`` tokens of which
    row ``b`` accepted ``a_b`` drafts, ``rollback(cache, old_lengths + 1 + a)`` keeps, per row,
    exactly the accepted tokens. ``commit(cache, keep bool[B, T])``, valid only right after a
    tree-mode call with ``T`` nodes, appends to row ``b`` the kept nodes, which must form a path
    from a root (depths ``0, 1, ..., k_b - 1``, each kept node's parent kept); ``keep[b]`` all
    false keeps nothing. Any other call first discards uncommitted tree nodes.

    **Ownership.** Caches are used linearly: pass the one returned by the last call and never
    reuse an older one (the torch adapter updates its cache in place; the JAX adapter's cache
    is an immutable pytree, so with it older caches do stay valid).

    Attributes:
      vocab_size: ``V``, the number of logits per position.
    """

    @property
    def vocab_size(self) -> int:
        ...

    def init_cache(self, batch_size: int, max_len: Optional[int] = None) -> Any:
        """An empty cache (every row has length 0) for ``batch_size`` rows of up to ``max_len``
        committed-plus-new tokens."""
        ...

    def logits(
        self,
        tokens: ArrayLike,
        cache: Any,
        *,
        valid: Optional[ArrayLike] = None,
        parents: Optional[ArrayLike] = None,
    ) -> tuple[jax.Array, Any]:
        """``(logits float[B, T, V], new_cache)`` for ``tokens int[B, T]`` (see the class)."""
        ...

    def rollback(self, cache: Any, lengths: ArrayLike) -> Any:
        """Truncate row ``b`` to its first ``lengths[b]`` committed tokens."""
        ...

    def commit(self, cache: Any, keep: ArrayLike) -> Any:
        """Append the kept root path of the last tree-mode call (``keep bool[B, T]``)."""
        ...

    def lengths(self, cache: Any) -> jax.Array:
        """Committed length of every row, ``int32[B]``."""
        ...


def chain_parents(T: int) -> np.ndarray:
    """Parents ``[-1, 0, 1, ..., T - 2]`` of a chain of ``T`` nodes: tree mode on a chain scores
    exactly what chain mode scores.

    Args:
      T: number of nodes, an int ``>= 0``.

    Returns:
      ``int32[T]``.

    Raises:
      ValueError: ``T`` is not an int ``>= 0``.

    >>> chain_parents(3).tolist()
    [-1, 0, 1]
    """
    T = _v.check_count(T, "T", minimum=0)
    return np.arange(T, dtype=np.int32) - 1


def check_forest(parents, name: str = "parents", *, ndim: Optional[int] = None) -> np.ndarray:
    """Host-side validation of a concrete topologically ordered forest ``int[..., T]``.

    Every row (last axis) must satisfy ``-1 <= parents[i] < i`` (``-1`` a root): this one
    condition rules out cycles (a node pointing to itself or to a later node), out-of-range
    parents, and parents listed after their children.

    Returns:
      ``parents`` as a NumPy integer array.

    Raises:
      ValueError: not an integer array of rank >= 1 (or of rank ``ndim``), or a parent
        outside ``[-1, i)``; the message starts with ``name``.
    """
    if parents is None or isinstance(parents, (str, bytes)):
        raise ValueError(f"{name}: expected an int array of parent indices, got {type(parents).__name__}")
    try:
        arr = np.asarray(parents)
    except Exception as e:  # noqa: BLE001  (ragged lists and other non-arrays)
        raise ValueError(f"{name}: expected an int array of parent indices ({e})") from None
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer parent indices, got dtype {arr.dtype}")
    if arr.ndim < 1 or (ndim is not None and arr.ndim != ndim):
        want = f"{ndim}-d" if ndim is not None else "at least 1-d"
        raise ValueError(f"{name}: expected an {want} array int[..., T], got shape {arr.shape}")
    T = arr.shape[-1]
    bad = (arr < -1) | (arr >= np.arange(T))
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: need -1 <= parents[i] < i (a topologically ordered forest, so no cycles), "
            f"got parents{list(where)} = {int(arr[where])}"
        )
    return arr


def forest_ok(parents, xp=jnp):
    """In-graph: whether every row of ``parents int[..., T]`` is a topologically ordered forest
    (``-1 <= parents[i] < i``); ``bool[...]``."""
    T = parents.shape[-1]
    return xp.all((parents >= -1) & (parents < xp.arange(T)), axis=-1)


def _tree_front(parents, xp):
    if xp is not np and xp is not jnp:
        raise ValueError(f"xp: expected numpy or jax.numpy, got {xp!r}")
    if _v.is_concrete(parents):
        return xp.asarray(check_forest(parents)), True
    if xp is np:
        raise TypeError("parents: a traced array needs xp=jax.numpy")
    if not jnp.issubdtype(parents.dtype, jnp.integer) or parents.ndim < 1:
        raise ValueError(f"parents: expected int[..., T], got {parents.dtype}{list(parents.shape)}")
    return parents, False


def tree_ancestors(parents: ArrayLike, xp=jnp):
    """Ancestor-or-self matrix of a topologically ordered forest.

    Args:
      parents: ``int[..., T]``, ``-1 <= parents[i] < i``; ``-1`` marks a root.
      xp: ``numpy`` or ``jax.numpy``.

    Returns:
      ``bool[..., T, T]`` with ``[..., i, j]`` true iff ``j == i`` or node ``j`` is an ancestor
      of node ``i``. Computed by ``ceil(log2 T)`` boolean squarings of the parent relation, so it
      is traceable for a traced ``parents`` of static shape. Under ``jax.jit`` (traced
      ``parents``) a row that is not a topologically ordered forest gives the flag: an
      all-false ``T x T`` matrix (no node is its own ancestor-or-self).

    Raises:
      ValueError: (concrete ``parents``) not an integer array, or some ``parents[i]`` outside
        ``[-1, i)`` (a cycle, an out-of-range parent, a parent after its child).

    >>> import numpy as np
    >>> tree_ancestors([-1, 0, 0], np).astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [1, 0, 1]]
    """
    parents, checked = _tree_front(parents, xp)
    T = parents.shape[-1]
    idx = xp.arange(T)
    a = (idx == parents[..., :, None]) | (idx[:, None] == idx)  # parent-or-self
    a = a.astype(xp.int32)
    for _ in range(max(1, math.ceil(math.log2(max(T, 2))))):
        a = (xp.matmul(a, a) > 0).astype(xp.int32)
    if checked:
        return a > 0
    return (a > 0) & forest_ok(parents, xp)[..., None, None]


def tree_depths(parents: ArrayLike, xp=jnp):
    """Depth of every node of a topologically ordered forest (a root has depth 0).

    Args:
      parents: ``int[..., T]``, ``-1 <= parents[i] < i``.
      xp: ``numpy`` or ``jax.numpy``.

    Returns:
      ``int32[..., T]``; under ``jax.jit`` a row that is not a topologically ordered forest
      gives the flag ``-1`` for every node.

    Raises:
      ValueError: (concrete ``parents``) as :func:`tree_ancestors`.

    >>> import numpy as np
    >>> tree_depths([-1, 0, 1, -1], np).tolist()
    [0, 1, 2, 0]
    """
    return (xp.sum(tree_ancestors(parents, xp).astype(xp.int32), axis=-1) - 1).astype(xp.int32)


def tree_paths(parents: ArrayLike) -> list[list[int]]:
    """Host-side: for each node, the node indices of its root-to-node path (for tests/oracles).

    Args:
      parents: ``int[T]`` (one forest), ``-1 <= parents[i] < i``; concrete.

    Returns:
      ``T`` lists; ``paths[i]`` starts at a root and ends at ``i``.

    Raises:
      ValueError: ``parents`` is not a 1-d integer array with ``-1 <= parents[i] < i`` (so the
        walk up to a root always ends: every step goes to a smaller index).
      TypeError: ``parents`` is traced.

    >>> tree_paths([-1, 0, 0, 2])
    [[0], [0, 1], [0, 2], [0, 2, 3]]
    """
    if not _v.is_concrete(parents):
        raise TypeError("parents: tree_paths runs on the host; got a traced array")
    parents = check_forest(parents, ndim=1)
    out = []
    for i in range(parents.shape[-1]):
        path, j = [], i
        while j >= 0:  # parents[j] < j: at most i + 1 steps
            path.append(j)
            j = int(parents[j])
        out.append(path[::-1])
    return out


def check_parents(parents: np.ndarray, T: int, B: int) -> np.ndarray:
    """Host-side validation of a concrete ``parents`` array of a tree-mode call with ``B`` rows
    of ``T`` nodes; returns it as ``int[B, T]`` (``ValueError`` naming ``parents``)."""
    parents = check_forest(parents)
    if parents.ndim not in (1, 2) or parents.shape[-1] != T or (parents.ndim == 2 and parents.shape[0] != B):
        raise ValueError(f"parents: expected shape ({T},) or ({B}, {T}), got {parents.shape}")
    return np.broadcast_to(parents, (B, T))


def check_batch_size(batch_size) -> int:
    """A cache's number of rows: an int ``>= 1`` (``ValueError`` naming ``batch_size``)."""
    return _v.check_count(batch_size, "batch_size", minimum=1)


def check_max_len(max_len, name: str = "max_len") -> Optional[int]:
    """``None`` or an int ``>= 1`` (``ValueError`` naming the argument)."""
    return None if max_len is None else _v.check_count(max_len, name, minimum=1)


def _mask(x, name: str, shape) -> np.ndarray:
    """A concrete boolean mask of ``shape``: bool, or integers in {0, 1}."""
    a = np.asarray(x)
    if a.dtype != bool:
        if not np.issubdtype(a.dtype, np.integer) or (a.size and not np.all((a == 0) | (a == 1))):
            raise ValueError(f"{name}: expected a boolean mask, got dtype {a.dtype}")
        a = a.astype(bool)
    if a.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    return a


def check_call(tokens, valid, vocab_size: int, batch_size: int, *, xp=np, host: bool = False):
    """Front door of ``logits``: ``tokens int[B, T]`` with ``B == batch_size`` and, where
    ``valid``, ids in ``[0, vocab_size)``; ``valid`` a bool mask ``[B, T]`` (default all true).

    Concrete inputs are checked fully (host side); traced inputs (``xp=jax.numpy``) by shape
    and dtype only; ``host=True`` refuses traced inputs (``TypeError``). Returns
    ``(tokens, valid)`` as ``xp`` arrays; ``ValueError`` naming the argument otherwise."""
    if tokens is None or isinstance(tokens, (str, bytes)):
        raise ValueError(f"tokens: expected int[B, T], got {type(tokens).__name__}")
    concrete = _v.is_concrete(tokens)
    if host and not (concrete and _v.is_concrete(valid)):
        raise TypeError("tokens: this model runs on the host; call it outside jax.jit / jax.vmap")
    t = np.asarray(tokens) if concrete else tokens
    if t.ndim != 2 or t.dtype == bool or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tokens: expected int[B, T], got {t.dtype}{list(t.shape)}")
    B, T = t.shape
    if B != batch_size:
        raise ValueError(f"tokens: batch size {B} != the cache's {batch_size}")
    if valid is None:
        v = xp.ones((B, T), bool)
    elif _v.is_concrete(valid):
        v = xp.asarray(_mask(valid, "valid", (B, T)))
    else:
        if tuple(valid.shape) != (B, T):
            raise ValueError(f"valid: expected shape {(B, T)}, got {tuple(valid.shape)}")
        v = valid.astype(bool)
    if concrete and _v.is_concrete(v):
        vv = np.asarray(v)
        if np.any(vv & ((t < 0) | (t >= vocab_size))):
            bad = t[vv & ((t < 0) | (t >= vocab_size))]
            raise ValueError(f"tokens: token ids must lie in [0, {vocab_size}), got {bad.min()}..{bad.max()}")
    return (xp.asarray(t) if concrete else t), v


def check_lengths(lengths, current) -> np.ndarray:
    """Front door of ``rollback``: concrete integer ``lengths`` of ``current``'s shape with
    ``0 <= lengths <= current``; returned as ``int64``."""
    if lengths is None or isinstance(lengths, (str, bytes)):
        raise ValueError(f"lengths: expected int[B], got {type(lengths).__name__}")
    new = np.asarray(lengths)
    cur = np.asarray(current)
    if new.dtype == bool or not np.issubdtype(new.dtype, np.integer):
        raise ValueError(f"lengths: expected integer lengths, got dtype {new.dtype}")
    if new.shape != cur.shape:
        raise ValueError(f"lengths: expected shape {cur.shape}, got {new.shape}")
    if np.any(new < 0) or np.any(new > cur):
        raise ValueError(f"lengths: rollback needs 0 <= lengths <= current lengths {cur.tolist()}, got {new.tolist()}")
    return new.astype(np.int64)


def check_keep(keep, shape) -> np.ndarray:
    """Front door of ``commit``: a concrete bool mask of ``shape`` (``ValueError`` naming ``keep``)."""
    if keep is None or isinstance(keep, (str, bytes)):
        raise ValueError(f"keep: expected bool{list(shape)}, got {type(keep).__name__}")
    return _mask(keep, "keep", shape)


def call_layout(lengths, valid, parents, xp=jnp):
    """Positions of the new tokens of one call and the mask among them.

    Args:
      lengths: ``int[B]`` committed lengths before the call.
      valid: ``bool[B, T]``.
      parents: ``None`` (chain mode) or ``int[B, T]`` (tree mode).
      xp: ``numpy`` or ``jax.numpy``.

    Returns:
      ``(positions int[B, T], mask bool[B, T, T])``: the logical position of every new token
      (``-1`` where invalid) and ``mask[b, i, j]``, whether new token ``i`` attends to new
      token ``j``. An invalid token attends to itself only (so no softmax row is empty).
    """
    valid = xp.asarray(valid, dtype=bool)
    B, T = valid.shape
    lengths = xp.asarray(lengths)[:, None]
    if parents is None:
        rank = xp.cumsum(valid.astype(xp.int32), axis=-1) - 1
        pos = lengths + rank
        attend = xp.tril(xp.ones((T, T), dtype=bool))[None]
    else:
        anc = tree_ancestors(parents, xp)
        attend = xp.broadcast_to(anc, (B, T, T))
        pos = lengths + xp.broadcast_to(tree_depths(parents, xp), (B, T))
    eye = xp.eye(T, dtype=bool)[None]
    mask = (attend & valid[:, None, :] & valid[:, :, None]) | (eye & ~valid[:, :, None])
    pos = xp.where(valid, pos, -1)
    return pos, mask


def check_path(keep: np.ndarray, parents: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Host-side: raise unless, per row, the kept valid nodes form a root path; return ``k[B]``."""
    if np.any(keep & ~valid):
        raise ValueError("keep: commit cannot keep an invalid (padding) node")
    k = keep.sum(axis=-1)
    for b in range(keep.shape[0]):
        for i in np.flatnonzero(keep[b]):
            p = parents[b, i]
            if p >= 0 and not keep[b, p]:
                raise ValueError(f"keep: commit: row {b} keeps node {i} but not its parent {p}")
        roots = [i for i in np.flatnonzero(keep[b]) if parents[b, i] < 0]
        children = np.bincount(parents[b][keep[b] & (parents[b] >= 0)], minlength=keep.shape[1])
        if k[b] and (len(roots) != 1 or np.any(children[keep[b]] > 1)):
            raise ValueError(f"keep: commit: row {b} keeps nodes that do not form a single root path")
    return k
