"""TableLM: a toy autoregressive model whose next-token laws are given explicitly."""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence, Union

import numpy as np

Table = Union[Mapping[tuple, "np.typing.ArrayLike"], Callable[[tuple], "np.typing.ArrayLike"]]


class TableLM:
    r"""A toy causal LM over ``vocab_size`` tokens with explicit next-token laws.

    The law of a sequence :math:`s` after a prefix :math:`c` is
    :math:`\prod_i P(s_i \mid c, s_{<i})` with each factor read from ``table``.

    Args:
      vocab_size: ``V``.
      table: either a mapping from prefixes (tuples of token ids) to float[V] probability
        vectors, or a callable ``prefix -> float[V]``. A mapping must contain every prefix that
        is asked for, unless ``default`` is given.
      default: optional float[V] law used for prefixes missing from a mapping.

    >>> lm = TableLM(2, {(): [0.25, 0.75], (0,): [1.0, 0.0], (1,): [0.5, 0.5]})
    >>> float(lm.sequence_prob((1, 0)))
    0.375
    """

    def __init__(self, vocab_size: int, table: Table, *, default=None):
        if int(vocab_size) < 1:
            raise ValueError(f"vocab_size: must be >= 1, got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self._table = table
        self._default = None if default is None else self._check(np.asarray(default, np.float64), "default")
        self._cache: dict[tuple, np.ndarray] = {}

    def _check(self, row: np.ndarray, where) -> np.ndarray:
        if row.shape != (self.vocab_size,):
            raise ValueError(f"TableLM: law for {where} has shape {row.shape}, expected ({self.vocab_size},)")
        if not np.all(np.isfinite(row)) or np.any(row < 0) or abs(row.sum() - 1) > 1e-9:
            raise ValueError(f"TableLM: law for {where} is not a probability vector")
        return row

    def next_law(self, prefix: Sequence[int] = ()) -> np.ndarray:
        """The next-token law after ``prefix``: float64[V]."""
        key = tuple(int(t) for t in prefix)
        if key not in self._cache:
            if callable(self._table):
                row = self._table(key)
            elif key in self._table:
                row = self._table[key]
            elif self._default is not None:
                row = self._default
            else:
                raise KeyError(f"TableLM: no law for prefix {key}")
            self._cache[key] = self._check(np.asarray(row, dtype=np.float64), f"prefix {key}")
        return self._cache[key]

    def sequence_prob(self, seq: Sequence[int], prefix: Sequence[int] = ()) -> float:
        r"""Probability :math:`\prod_i P(s_i \mid c, s_{<i})` of ``seq`` after ``prefix``."""
        ctx = list(prefix)
        prob = 1.0
        for t in seq:
            prob *= self.next_law(ctx)[int(t)]
            ctx.append(int(t))
        return prob

    def laws(self, prefix: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
        """Stacked next-token laws after ``prefix + continuation[:i]`` for ``i = 0..len``:
        float64[len(continuation) + 1, V]."""
        ctx = list(prefix)
        rows = [self.next_law(ctx)]
        for t in continuation:
            ctx.append(int(t))
            rows.append(self.next_law(ctx))
        return np.stack(rows)

    @classmethod
    def context_free(cls, probs) -> "TableLM":
        """A model whose next-token law is ``probs`` after every prefix."""
        probs = np.asarray(probs, dtype=np.float64)
        return cls(probs.shape[-1], lambda prefix: probs)

    @classmethod
    def random(cls, vocab_size: int, depth: int, *, seed: int = 0, concentration: float = 1.0,
               zero_prob: float = 0.0) -> "TableLM":
        """A model with independent Dirichlet(``concentration``) laws for every prefix of length
        ``< depth`` (uniform beyond). With ``zero_prob > 0`` each entry is zeroed with that
        probability (at least one entry stays positive), to exercise exact zeros."""
        rng = np.random.default_rng(seed)
        table = {}
        for L in range(depth):
            for prefix in itertools.product(range(vocab_size), repeat=L):
                row = rng.dirichlet(np.full(vocab_size, concentration))
                if zero_prob > 0:
                    mask = rng.random(vocab_size) >= zero_prob
                    mask[rng.integers(vocab_size)] = True
                    row = row * mask
                    row = row / row.sum()
                table[prefix] = row
        return cls(vocab_size, table, default=np.full(vocab_size, 1.0 / vocab_size))

    def mix(self, other: "TableLM", weight: float) -> "TableLM":
        """The model whose law after every prefix is ``(1 - weight) * self + weight * other``
        (a convenient way to build a draft model correlated with a target)."""
        if other.vocab_size != self.vocab_size:
            raise ValueError("mix: vocabulary sizes differ")
        if not 0 <= weight <= 1:
            raise ValueError(f"weight: must lie in [0, 1], got {weight}")
        return TableLM(self.vocab_size,
                       lambda prefix: (1 - weight) * self.next_law(prefix) + weight * other.next_law(prefix))
