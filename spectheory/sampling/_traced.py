"""Validity masks for traced inputs (private).

Under ``jax.jit`` (or an eager ``jax.vmap``) the front door's value checks cannot raise, so
the functions of :mod:`spectheory.bounds`, :mod:`spectheory.trees` and
:mod:`spectheory.sampling` compute these masks *only when an input is traced* and turn the
result of an invalid row into NaN (or the token flag ``-1``). Eager calls have already been
checked on the host and pay nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectheory._validation import is_concrete, sum_tol


def any_traced(*xs) -> bool:
    """True when any of ``xs`` is a tracer (inside ``jit``/``vmap``)."""
    return any(x is not None and not is_concrete(x) for x in xs)


def probs_ok(x: jax.Array) -> jax.Array:
    """bool[...]: each row of ``x[..., V]`` is finite, non-negative and sums to one within
    :func:`spectheory._validation.sum_tol` (one fused pass over the row)."""
    finite_nonneg = jnp.all((x >= 0) & (x < jnp.inf), axis=-1)  # NaN fails both comparisons
    return finite_nonneg & (jnp.abs(jnp.sum(x, axis=-1) - 1) <= sum_tol(x.dtype))


def logits_ok(x: jax.Array) -> jax.Array:
    """bool[...]: each row of logits ``x[..., V]`` has no NaN, no ``+inf`` and at least one
    finite entry (the rules of :func:`spectheory._validation.as_logits`)."""
    return jnp.all(x < jnp.inf, axis=-1) & jnp.any(x > -jnp.inf, axis=-1)


def nan_where(ok, x: jax.Array) -> jax.Array:
    """``x`` where ``ok`` (broadcast against the leading axes of ``x``), NaN elsewhere."""
    ok = jnp.asarray(ok)
    ok = ok.reshape(ok.shape + (1,) * (x.ndim - ok.ndim))
    return jnp.where(ok, x, jnp.asarray(jnp.nan, x.dtype))


def flag_where(ok, tokens: jax.Array) -> jax.Array:
    """Token ids where ``ok`` (broadcast against the leading axes), the flag ``-1`` elsewhere."""
    ok = jnp.asarray(ok)
    ok = ok.reshape(ok.shape + (1,) * (tokens.ndim - ok.ndim))
    return jnp.where(ok, tokens, jnp.asarray(-1, tokens.dtype))
