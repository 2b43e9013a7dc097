"""A :class:`~spectheory.models.CausalLM` over a :class:`~spectheory.models.TableLM` (private).

The toy model with explicit next-token laws, behind the same contract as the real adapters, so
that speculative generation can be audited exactly (the law of every generated sequence is
``TableLM.sequence_prob``).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory.models._causal_lm import (
    check_batch_size,
    check_call,
    check_keep,
    check_lengths,
    check_max_len,
    check_parents,
    check_path,
    tree_paths,
)
from spectheory.models._table import TableLM

__all__ = ["TableCausalLM", "TableCache"]

#: Logit given to tokens of probability zero: finite (the contract says logits are finite) and
#: so negative that ``exp`` underflows to exactly 0 in float32 at any temperature <= 1.
ZERO_LOGIT = -1e30


class TableCache:
    """Cache of :class:`TableCausalLM` (mutable, host side).

    Made by :meth:`TableCausalLM.init_cache`; starts with every row empty and nothing pending.

    Args:
      batch_size: number of rows ``B``, an int ``>= 1``.
      max_len: largest length a row may reach: an int ``>= 1``, or ``None`` for unbounded.

    Raises:
      ValueError: ``batch_size`` or ``max_len`` is not an int ``>= 1`` (``max_len`` may be
        ``None``).

    Attributes:
      rows: committed tokens of every row (a list of Python lists).
      max_len: largest length a row may reach.
      pending: ``(parents int[B, T], valid bool[B, T], tokens int[B, T])`` of the last tree-mode
        call, else ``None``.
    """

    def __init__(self, batch_size: int, max_len: Optional[int]):
        self.rows: list[list[int]] = [[] for _ in range(check_batch_size(batch_size))]
        self.max_len = check_max_len(max_len)
        self.pending = None


class TableCausalLM:
    r"""Wrap a :class:`TableLM` as a :class:`CausalLM`: ``logits = log P(. | prefix)``.

    Probability-zero tokens get the finite logit ``-1e30`` (``softmax`` gives exactly 0).
    Everything runs on the host; logits come back as ``float64`` when x64 is enabled (else
    float32). Chain mode, per-row rollback, tree mode and commit follow the contract exactly.

    Args:
      table: the :class:`TableLM`.
      max_len: optional default ``max_len`` of :meth:`init_cache` (``None``: unbounded).

    Example:
      >>> from spectheory.models import TableLM, TableCausalLM
      >>> lm = TableCausalLM(TableLM(2, {(): [0.25, 0.75]}, default=[0.5, 0.5]))
      >>> logits, cache = lm.logits([[1, 0]], lm.init_cache(1))
      >>> logits.shape, lm.lengths(cache).tolist()
      ((1, 2, 2), [2])
    """

    def __init__(self, table: TableLM, max_len: Optional[int] = None):
        if not isinstance(table, TableLM):
            raise TypeError(f"table: expected a TableLM, got {type(table).__name__}")
        self.table = table
        self.max_len = check_max_len(max_len)

    @property
    def vocab_size(self) -> int:
        return self.table.vocab_size

    def init_cache(self, batch_size: int, max_len: Optional[int] = None) -> TableCache:
        return TableCache(batch_size, self.max_len if max_len is None else max_len)

    @staticmethod
    def _cache(cache) -> TableCache:
        if not isinstance(cache, TableCache):
            raise TypeError(f"cache: expected a TableCache (from init_cache), got {type(cache).__name__}")
        return cache

    def lengths(self, cache: TableCache) -> jax.Array:
        return jnp.asarray([len(r) for r in self._cache(cache).rows], jnp.int32)

    def _log_law(self, prefix) -> np.ndarray:
        law = self.table.next_law(prefix)
        with np.errstate(divide="ignore"):
            return np.where(law > 0, np.log(np.maximum(law, 1e-300)), ZERO_LOGIT)

    def rollback(self, cache: TableCache, lengths: ArrayLike) -> TableCache:
        cache = self._cache(cache)
        new = check_lengths(lengths, np.array([len(r) for r in cache.rows]))
        cache.rows = [r[: int(n)] for r, n in zip(cache.rows, new)]
        cache.pending = None
        return cache

    def commit(self, cache: TableCache, keep: ArrayLike) -> TableCache:
        cache = self._cache(cache)
        if cache.pending is None:
            raise ValueError("cache: commit must directly follow a tree-mode logits call")
        parents, valid, tokens = cache.pending
        keep = check_keep(keep, valid.shape)
        check_path(keep, parents, valid)
        for b in range(keep.shape[0]):
            cache.rows[b] = cache.rows[b] + [int(t) for t in tokens[b][keep[b]]]
        cache.pending = None
        return cache

    def logits(self, tokens: ArrayLike, cache: TableCache, *, valid: Optional[ArrayLike] = None,
               parents: Optional[ArrayLike] = None):
        cache = self._cache(cache)
        tokens, valid = check_call(tokens, valid, self.vocab_size, len(cache.rows), host=True)
        B, T = tokens.shape
        if parents is not None:
            parents = check_parents(parents, T, B)
            for b in range(B):
                if np.any(valid[b] & (parents[b] >= 0) & ~valid[b][np.maximum(parents[b], 0)]):
                    raise ValueError("valid: a valid tree node has an invalid (padding) parent")
        if cache.max_len is not None:
            grow = valid.sum(axis=1) if parents is None else np.where(valid.any(axis=1), _max_depth(parents) + 1, 0)
            longest = max(len(r) + int(g) for r, g in zip(cache.rows, grow))
            if longest > cache.max_len:
                raise ValueError(f"tokens: a row would reach length {longest} > max_len={cache.max_len}")
        cache.pending = None
        V = self.vocab_size
        out = np.zeros((B, T, V))
        if parents is None:
            for b in range(B):
                row = cache.rows[b]
                for t in range(T):
                    if valid[b, t]:
                        row.append(int(tokens[b, t]))
                        out[b, t] = self._log_law(row)
        else:
            for b in range(B):
                paths = tree_paths(parents[b])
                for i in range(T):
                    if valid[b, i]:
                        out[b, i] = self._log_law(cache.rows[b] + [int(tokens[b, j]) for j in paths[i]])
            cache.pending = (parents, valid, tokens)
        return jnp.asarray(out), cache


def _max_depth(parents: np.ndarray) -> np.ndarray:
    """Largest node depth of every row of a checked forest ``int[B, T]``."""
    depth = np.zeros(parents.shape, np.int64)
    for i in range(parents.shape[1]):
        depth[:, i] = np.where(parents[:, i] >= 0, depth[np.arange(parents.shape[0]), np.maximum(parents[:, i], 0)] + 1, 0)
    return depth.max(axis=1) if parents.shape[1] else np.zeros(parents.shape[0], np.int64)
