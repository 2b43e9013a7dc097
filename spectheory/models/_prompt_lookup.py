"""Prompt-lookup (n-gram) drafting (private).

References:
  [1] Saxena, "Prompt Lookup Decoding", 2023, https://github.com/apoorvumang/prompt-lookup-decoding
      (``prompt_lookup_num_tokens`` in ``transformers``' ``generate``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

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

    Pure JAX; ``vmap`` over ``(context, length)`` for a batch.

    Args:
      context: ``int[S]`` token ids; only the first ``length`` are read.
      length: valid length of ``context`` (scalar int, may be traced); default ``S``.
      num_drafts: ``γ``, number of tokens to propose (static).
      max_ngram: longest suffix tried (static).
      min_ngram: shortest suffix tried (static), ``1 <= min_ngram <= max_ngram``.
      pad_token: filler for entries past ``num_drafts``.

    Returns:
      :class:`PromptLookupDraft`.

    Example:
      >>> import jax.numpy as jnp
      >>> d = prompt_lookup(jnp.array([5, 1, 2, 3, 9, 1, 2]), num_drafts=3)
      >>> d.tokens.tolist(), int(d.num_drafts), int(d.ngram)
      ([3, 9, 1], 3, 2)

    References:
      Saxena, Prompt Lookup Decoding (2023).
    """
    if not 1 <= min_ngram <= max_ngram:
        raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
    context = jnp.asarray(context)
    if context.ndim != 1:
        raise ValueError(f"context must be int[S] (vmap for batches), got shape {context.shape}")
    S = context.shape[0]
    length = jnp.asarray(S if length is None else length, jnp.int32)
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
    return PromptLookupDraft(drafts, count, best_n)


def point_mass(tokens: ArrayLike, vocab_size: int, dtype=jnp.float32) -> jax.Array:
    r"""Draft law of a deterministic proposal: ``q[..., v] = 1`` iff ``v == tokens[...]``.

    Args:
      tokens: ``int[...]``.
      vocab_size: ``V``.

    Returns:
      ``float[..., V]`` one-hot rows.
    """
    return jax.nn.one_hot(jnp.asarray(tokens), vocab_size, dtype=dtype)
