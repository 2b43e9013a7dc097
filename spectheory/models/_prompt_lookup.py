"""Prompt-lookup (n-gram) drafting (private).

References:
  [1] Saxena, "Prompt Lookup Decoding", 2023, https://github.com/apoorvumang/prompt-lookup-decoding
      (``prompt_lookup_num_tokens`` in ``transformers``' ``generate``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory import _validation as _v

__all__ = ["PromptLookupDraft", "prompt_lookup", "point_mass"]


class PromptLookupDraft(NamedTuple):
    """Drafts proposed by :func:`prompt_lookup`.

    Attributes:
      tokens: the proposed continuation; entries from ``num_drafts`` on are the filler
        ``pad_token``.  # shape=(γ,), dtype=int32
      num_drafts: how many entries are a real continuation (``0`` when no n-gram
        matched).  # shape=(), dtype=int32
      ngram: length ``n`` of the matched suffix, ``0`` when none matched.  # shape=(), dtype=int32
    """

    tokens: jax.Array
    num_drafts: jax.Array
    ngram: jax.Array


def prompt_lookup(
    context: ArrayLike,
    length: ArrayLike | None = None,
    *,
    num_drafts: int,
    max_ngram: int = 3,
    min_ngram: int = 1,
    pad_token: int = 0,
) -> PromptLookupDraft:
    r"""Propose the continuation of the most recent earlier occurrence of the context's suffix.

    With ``c = context[:length]``: for ``n = max_ngram, ..., min_ngram`` (longest first), find
    the largest ``s < length - n`` with ``c[s : s + n] == c[length - n :]``; the first ``n``
    that matches wins and the drafts are ``c[s + n : s + n + γ]``, cut at ``length`` (so
    ``num_drafts = min(γ, length - s - n) >= 1``; the continuation may run into the suffix
    itself, which is what makes repeats like ``abcabc`` continue). No match: ``num_drafts = 0``.

    The drafts are a deterministic function of the context, so their draft law is a point mass:
    verify draft ``x_i`` with :math:`q_i = \delta_{x_i}` (:func:`point_mass`). Token
    verification then accepts ``x_i`` with probability :math:`p_i(x_i)` and otherwise samples
    :math:`\mathrm{norm}((p_i - \delta_{x_i})_+) = p_i(\cdot \mid \ne x_i)`, whose mixture is
    exactly :math:`p_i`: lossless, for any deterministic proposal, so also for the filler tokens
    past ``num_drafts`` (verifying them only wastes work; a caller may cut the chain at
    ``num_drafts``).

    Pure JAX; ``vmap`` over ``(context, length)`` for a batch. Under ``jax.jit`` a traced
    ``length`` outside ``[0, S]`` gives the flag: every token ``-1``, ``num_drafts = 0`` and
    ``ngram = -1``.

    Args:
      context: ``int[S]`` token ids; only the first ``length`` are read.
      length: valid length of ``context`` (scalar int, may be traced), ``0 <= length <= S``;
        default ``S``.
      num_drafts: ``γ``, number of tokens to propose (static), an int ``>= 1``.
      max_ngram: longest suffix tried (static).
      min_ngram: shortest suffix tried (static), ``1 <= min_ngram <= max_ngram``.
      pad_token: filler (an int) for entries past ``num_drafts``.

    Returns:
      :class:`PromptLookupDraft`.

    Raises:
      ValueError: ``context`` not ``int[S]``; ``length`` not a scalar int (or, concrete,
        outside ``[0, S]``); ``num_drafts``, ``min_ngram``, ``max_ngram`` not ints ``>= 1`` or
        ``min_ngram > max_ngram``; ``pad_token`` not an int.

    Example:
      >>> import jax.numpy as jnp
      >>> d = prompt_lookup(jnp.array([5, 1, 2, 3, 9, 1, 2]), num_drafts=3)
      >>> d.tokens.tolist(), int(d.num_drafts), int(d.ngram)
      ([3, 9, 1], 3, 2)

    References:
      Saxena, Prompt Lookup Decoding (2023).
    """
    num_drafts = _v.check_count(num_drafts, "num_drafts", minimum=1)
    min_ngram = _v.check_count(min_ngram, "min_ngram", minimum=1)
    max_ngram = _v.check_count(max_ngram, "max_ngram", minimum=1)
    if min_ngram > max_ngram:
        raise ValueError(f"min_ngram: need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
    if isinstance(pad_token, bool) or not isinstance(pad_token, (int, np.integer)):
        raise ValueError(f"pad_token: expected an int token id, got {pad_token!r}")
    if context is None or isinstance(context, (str, bytes)):
        raise ValueError(f"context: expected int[S], got {type(context).__name__}")
    context = jnp.asarray(context) if _v.is_concrete(context) else context
    if context.ndim != 1 or not jnp.issubdtype(context.dtype, jnp.integer):
        raise ValueError(f"context: expected int[S] (vmap for batches), got {context.dtype}{list(context.shape)}")
    S = context.shape[0]
    if length is None:
        length = jnp.int32(S)
    else:
        if isinstance(length, bool) or not (isinstance(length, (int, np.integer)) or (
                hasattr(length, "dtype") and jnp.issubdtype(length.dtype, jnp.integer) and jnp.ndim(length) == 0)):
            raise ValueError(f"length: expected a scalar int, got {length!r}")
        if _v.is_concrete(length) and not 0 <= int(length) <= S:
            raise ValueError(f"length: expected 0 <= length <= {S}, got {int(length)}")
        length = jnp.asarray(length, jnp.int32)
    bad_length = (length < 0) | (length > S)
    starts = jnp.arange(S)

    best_s = jnp.int32(-1)
    best_n = jnp.int32(0)
    for n in range(min_ngram, max_ngram + 1):  # a longer match overrides a shorter one
        suffix = jnp.take(context, jnp.clip(length - n + jnp.arange(n), 0, S - 1))
        windows = jnp.take(context, jnp.clip(starts[:, None] + jnp.arange(n), 0, S - 1))
        match = jnp.all(windows == suffix, axis=-1) & (starts < length - n)
        s = jnp.max(jnp.where(match, starts, -1)).astype(jnp.int32)
        found = s >= 0
        best_s = jnp.where(found, s, best_s)
        best_n = jnp.where(found, jnp.int32(n), best_n)
    begin = best_s + best_n
    count = jnp.where(best_s >= 0, jnp.minimum(num_drafts, length - begin), 0).astype(jnp.int32)
    i = jnp.arange(num_drafts)
    drafts = jnp.take(context, jnp.clip(begin + i, 0, S - 1))
    drafts = jnp.where(i < count, drafts, pad_token).astype(jnp.int32)
    # traced length outside [0, S]: the flag (tokens -1, num_drafts 0, ngram -1)
    drafts = jnp.where(bad_length, -1, drafts).astype(jnp.int32)
    count = jnp.where(bad_length, 0, count).astype(jnp.int32)
    best_n = jnp.where(bad_length, -1, best_n).astype(jnp.int32)
    return PromptLookupDraft(drafts, count, best_n)


def point_mass(tokens: ArrayLike, vocab_size: int, dtype=jnp.float32) -> jax.Array:
    r"""Draft law of a deterministic proposal: ``q[..., v] = 1`` iff ``v == tokens[...]``.

    Args:
      tokens: ``int[...]``, ids in ``[0, V)``.
      vocab_size: ``V``, an int ``>= 1``.
      dtype: floating dtype of the rows.

    Returns:
      ``float[..., V]`` one-hot rows; under ``jax.jit`` an id outside ``[0, V)`` gives a NaN
      row (never a plausible law).

    Raises:
      ValueError: ``vocab_size`` not an int ``>= 1``, ``tokens`` not integer, or (concrete) an
        id outside ``[0, V)``.

    >>> point_mass(jnp.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    vocab_size = _v.check_count(vocab_size, "vocab_size", minimum=1)
    if tokens is None or isinstance(tokens, (str, bytes)):
        raise ValueError(f"tokens: expected integer token ids, got {type(tokens).__name__}")
    tokens = jnp.asarray(tokens) if _v.is_concrete(tokens) else tokens
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens: expected integer token ids, got dtype {tokens.dtype}")
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise ValueError(f"dtype: expected a floating dtype, got {dtype}")
    if _v.is_concrete(tokens):
        _v.as_tokens(tokens, "tokens", vocab_size, ndim=None)
        return jax.nn.one_hot(tokens, vocab_size, dtype=dtype)
    oor = (tokens < 0) | (tokens >= vocab_size)
    return jnp.where(oor[..., None], jnp.nan, jax.nn.one_hot(tokens, vocab_size, dtype=dtype)).astype(dtype)
