"""TableLM: a toy autoregressive model whose next-token laws are given explicitly."""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from spectheory import _validation as _v

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

    Raises:
      ValueError: ``vocab_size`` not an int ``>= 1``; ``default`` (at construction) or a law
        of ``table`` (when first read) not a float[V] probability vector; token ids of a
        prefix or sequence not ints in ``[0, V)`` (each message names the argument).
      TypeError: ``table`` is neither a mapping nor a callable.

    >>> lm = TableLM(2, {(): [0.25, 0.75], (0,): [1.0, 0.0], (1,): [0.5, 0.5]})
    >>> float(lm.sequence_prob((1, 0)))
    0.375
    """

    def __init__(self, vocab_size: int, table: Table, *, default=None):
        self.vocab_size = _v.check_count(vocab_size, "vocab_size", minimum=1)
        if not (isinstance(table, Mapping) or callable(table)):
            raise TypeError(f"table: expected a mapping prefix -> law or a callable, got {type(table).__name__}")
        self._table = table
        self._default = None if default is None else self._check(default, "default", "default")
        self._cache: dict[tuple, np.ndarray] = {}

    def _check(self, row, name: str, where) -> np.ndarray:
        try:
            row = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: law for {where} is not a float array ({e})") from None
        if row.shape != (self.vocab_size,):
            raise ValueError(f"{name}: law for {where} has shape {row.shape}, expected ({self.vocab_size},)")
        if not np.all(np.isfinite(row)) or np.any(row < 0) or abs(row.sum() - 1) > 1e-9:
            raise ValueError(f"{name}: law for {where} is not a probability vector (finite, >= 0, sum 1 +- 1e-9)")
        return row

    def _ids(self, seq, name: str) -> tuple:
        """``seq`` as a tuple of Python ints in ``[0, V)``, else ``ValueError`` naming ``name``."""
        return check_ids(seq, self.vocab_size, name)

    def next_law(self, prefix: Sequence[int] = ()) -> np.ndarray:
        """The next-token law after ``prefix``: float64[V].

        Raises:
          ValueError: ``prefix`` is not a sequence of integer ids in ``[0, V)``, or the law
            ``table`` gives for it is not a probability vector.
          KeyError: a mapping ``table`` has no law for ``prefix`` and there is no ``default``.
        """
        key = self._ids(prefix, "prefix")
        if key not in self._cache:
            if callable(self._table):
                row = self._table(key)
            elif key in self._table:
                row = self._table[key]
            elif self._default is not None:
                row = self._default
            else:
                raise KeyError(f"TableLM: no law for prefix {key}")
            self._cache[key] = self._check(row, "table", f"prefix {key}")
        return self._cache[key]

    def sequence_prob(self, seq: Sequence[int], prefix: Sequence[int] = ()) -> float:
        r"""Probability :math:`\prod_i P(s_i \mid c, s_{<i})` of ``seq`` after ``prefix``
        (both sequences of integer ids in ``[0, V)``, else ``ValueError`` naming them)."""
        ctx = list(self._ids(prefix, "prefix"))
        prob = 1.0
        for t in self._ids(seq, "seq"):
            prob *= self.next_law(ctx)[t]
            ctx.append(t)
        return prob

    def laws(self, prefix: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
        """Stacked next-token laws after ``prefix + continuation[:i]`` for ``i = 0..len``:
        float64[len(continuation) + 1, V] (ids checked as in :meth:`sequence_prob`)."""
        ctx = list(self._ids(prefix, "prefix"))
        rows = [self.next_law(ctx)]
        for t in self._ids(continuation, "continuation"):
            ctx.append(t)
            rows.append(self.next_law(ctx))
        return np.stack(rows)

    @classmethod
    def context_free(cls, probs) -> "TableLM":
        """A model whose next-token law is ``probs`` (a float[V] probability vector; else
        ``ValueError`` naming ``probs``) after every prefix."""
        try:
            arr = np.asarray(probs, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"probs: expected a float[V] probability vector ({e})") from None
        if arr.ndim != 1 or arr.shape[0] < 1:
            raise ValueError(f"probs: expected a non-empty float[V] probability vector, got shape {arr.shape}")
        lm = cls(arr.shape[-1], lambda prefix: arr)
        lm._check(arr, "probs", "every prefix")
        return lm

    @classmethod
    def random(cls, vocab_size: int, depth: int, *, seed: int = 0, concentration: float = 1.0,
               zero_prob: float = 0.0) -> "TableLM":
        """A model with independent Dirichlet(``concentration``) laws for every prefix of length
        ``< depth`` (uniform beyond). With ``zero_prob > 0`` each entry is zeroed with that
        probability (at least one entry stays positive), to exercise exact zeros."""
        vocab_size = _v.check_count(vocab_size, "vocab_size", minimum=1)
        depth = _v.check_count(depth, "depth", minimum=0)
        if isinstance(concentration, bool) or not isinstance(concentration, (int, float, np.number)) or not (
                np.isfinite(concentration) and concentration > 0):
            raise ValueError(f"concentration: expected a finite float > 0, got {concentration!r}")
        if isinstance(zero_prob, bool) or not isinstance(zero_prob, (int, float, np.number)) or not (
                0 <= zero_prob < 1):
            raise ValueError(f"zero_prob: expected a float in [0, 1), got {zero_prob!r}")
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
        if not isinstance(other, TableLM):
            raise TypeError(f"other: expected a TableLM, got {type(other).__name__}")
        if other.vocab_size != self.vocab_size:
            raise ValueError(f"other: vocabulary sizes differ ({other.vocab_size} != {self.vocab_size})")
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not 0 <= weight <= 1:
            raise ValueError(f"weight: must be a number in [0, 1], got {weight!r}")
        return TableLM(self.vocab_size,
                       lambda prefix: (1 - weight) * self.next_law(prefix) + weight * other.next_law(prefix))


def check_ids(seq, V: int, name: str) -> tuple:
    """``seq`` as a tuple of Python ints in ``[0, V)``, else ``ValueError`` naming ``name``."""
    if seq is None or isinstance(seq, (str, bytes)):
        raise ValueError(f"{name}: expected a sequence of token ids, got {type(seq).__name__}")
    if hasattr(seq, "dtype"):
        a = np.asarray(seq)
        if a.ndim != 1 or (a.size and (a.dtype == bool or not np.issubdtype(a.dtype, np.integer))):
            raise ValueError(f"{name}: expected a 1-d sequence of integer token ids, got {a.dtype}{list(a.shape)}")
        ids = tuple(a.tolist())
    else:
        try:
            items = tuple(seq)
        except TypeError:
            raise ValueError(f"{name}: expected a sequence of token ids, got {type(seq).__name__}") from None
        ids = []
        for t in items:
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                a = np.asarray(t) if hasattr(t, "dtype") else None
                if a is None or a.ndim != 0 or a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
                    raise ValueError(f"{name}: expected integer token ids, got {t!r}")
            ids.append(int(t))
        ids = tuple(ids)
    for t in ids:
        if not 0 <= t < V:
            raise ValueError(f"{name}: token id {t} out of range [0, {V})")
    return ids


def check_table_lm(model, name: str) -> "TableLM":
    """``model`` if it is a :class:`TableLM`, else ``TypeError`` naming ``name``."""
    if not isinstance(model, TableLM):
        raise TypeError(f"{name}: expected a spectheory.models.TableLM, got {type(model).__name__}")
    return model
