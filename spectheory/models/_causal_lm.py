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
    exactly what chain mode scores."""
    return np.arange(T, dtype=np.int32) - 1


def tree_ancestors(parents: ArrayLike, xp=jnp):
    """Ancestor-or-self matrix of a topologically ordered forest.

    Args:
      parents: ``int[..., T]``, ``-1 <= parents[i] < i``; ``-1`` marks a root.
      xp: ``numpy`` or ``jax.numpy``.

    Returns:
      ``bool[..., T, T]`` with ``[..., i, j]`` true iff ``j == i`` or node ``j`` is an ancestor
      of node ``i``. Computed by ``ceil(log2 T)`` boolean squarings of the parent relation, so it
      is traceable for a traced ``parents`` of static shape.
    """
    parents = xp.asarray(parents)
    T = parents.shape[-1]
    idx = xp.arange(T)
    a = (idx == parents[..., :, None]) | (idx[:, None] == idx)  # parent-or-self
    a = a.astype(xp.int32)
    for _ in range(max(1, math.ceil(math.log2(max(T, 2))))):
        a = (xp.matmul(a, a) > 0).astype(xp.int32)
    return a > 0


def tree_depths(parents: ArrayLike, xp=jnp):
    """Depth of every node (a root has depth 0), ``int32[..., T]``."""
    return (xp.sum(tree_ancestors(parents, xp).astype(xp.int32), axis=-1) - 1).astype(xp.int32)


def tree_paths(parents: ArrayLike) -> list[list[int]]:
    """Host-side: for each node, the node indices of its root-to-node path (for tests/oracles)."""
    parents = np.asarray(parents)
    out = []
    for i in range(parents.shape[-1]):
        path, j = [], i
        while j >= 0:
            path.append(j)
            j = int(parents[j])
        out.append(path[::-1])
    return out


def check_parents(parents: np.ndarray, T: int, B: int) -> np.ndarray:
    """Host-side validation of a concrete ``parents`` array; returns it as ``int[B, T]``."""
    parents = np.asarray(parents)
    if parents.ndim not in (1, 2) or parents.shape[-1] != T:
        raise ValueError(f"parents must have shape ({T},) or ({B}, {T}), got {parents.shape}")
    if not np.issubdtype(parents.dtype, np.integer):
        raise ValueError(f"parents must be integers, got {parents.dtype}")
    parents = np.broadcast_to(parents, (B, T))
    if np.any(parents < -1) or np.any(parents >= np.arange(T)):
        raise ValueError("parents must satisfy -1 <= parents[i] < i (topological order)")
    return parents


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
        raise ValueError("commit: cannot keep an invalid (padding) node")
    k = keep.sum(axis=-1)
    for b in range(keep.shape[0]):
        for i in np.flatnonzero(keep[b]):
            p = parents[b, i]
            if p >= 0 and not keep[b, p]:
                raise ValueError(f"commit: row {b} keeps node {i} but not its parent {p}")
        roots = [i for i in np.flatnonzero(keep[b]) if parents[b, i] < 0]
        children = np.bincount(parents[b][keep[b] & (parents[b] >= 0)], minlength=keep.shape[1])
        if k[b] and (len(roots) != 1 or np.any(children[keep[b]] > 1)):
            raise ValueError(f"commit: row {b} keeps nodes that do not form a single root path")
    return k
