"""Input checks shared by the draft schemes (private).

Three front doors, one per kind of argument:

* :func:`sampler_law`: the draft law ``q`` of a sampler (``*_sample``), a ``float[V]``
  probability vector; shape and dtype checked at trace time, values on concrete arrays;
* :func:`host_law`: the ``q`` of an enumerated law (``*_law``), host side only (a traced
  ``q`` is refused with a ``TypeError``);
* :func:`children_logq`: the log draft law ``logq`` of a tree child sampler (``*_children``).

Under ``jax.jit`` value checks cannot raise; :func:`law_ok` and :func:`logq_ok` are the
in-graph versions the samplers turn into their documented flags (draft id ``-1``, or no valid
child), at the eager tolerance (:func:`spectheory._validation.sum_tol`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v


def _numeric(x, name: str):
    """``x`` as an array of a numeric dtype (concrete inputs), else ``ValueError`` naming it."""
    if not _v.is_concrete(x):
        return x
    if x is None or isinstance(x, (str, bytes)):
        raise ValueError(f"{name}: expected a float array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as e:  # noqa: BLE001  (ragged lists and other non-arrays)
        raise ValueError(f"{name}: expected a float array, got {type(x).__name__} ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    return x


def vector(x, name: str) -> jax.Array:
    """``x`` as a non-empty 1-d numeric ``jax.Array`` (shape and dtype only), else
    ``ValueError`` naming ``name``."""
    x = _numeric(x, name)
    arr = jnp.asarray(x) if _v.is_concrete(x) else x
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected a non-empty 1-d array (jax.vmap for batches), got shape {tuple(arr.shape)}")
    return arr


def sampler_law(q, name: str = "q") -> jax.Array:
    """Front door of a sampler's draft law: a 1-d probability vector (batches: ``jax.vmap``).

    Returns ``q`` as a floating ``jax.Array``; ``ValueError`` naming ``name`` otherwise (values
    are checked only when ``q`` is concrete)."""
    return _v.as_probs(_numeric(q, name), name)


def host_law(q, name: str = "q") -> np.ndarray:
    """Front door of an enumerated law: ``q`` concrete, a 1-d probability vector (checked at its
    own precision, float32 sums are looser), returned as ``float64``."""
    if not _v.is_concrete(q):
        raise TypeError(
            f"{name}: the enumerated draft law is computed on the host (NumPy) and cannot be traced; "
            "call it outside jax.jit / jax.vmap"
        )
    q = _numeric(q, name)
    _v.as_probs(np.asarray(q), name)
    return np.asarray(q, dtype=np.float64)


def children_logq(logq, name: str = "logq") -> jax.Array:
    """Front door of a tree child sampler: ``logq`` a 1-d floating array of log-probabilities.

    On a concrete array: no NaN, no ``+inf``, at least one finite entry, and ``exp(logq)``
    summing to one within :func:`spectheory._validation.sum_tol`; else ``ValueError``."""
    logq = _numeric(logq, name)
    arr = jnp.asarray(logq) if _v.is_concrete(logq) else logq
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating array of log-probabilities, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"{name}: expected a non-empty 1-d array (jax.vmap for batches), got shape {tuple(arr.shape)}")
    if _v.is_concrete(arr):
        a = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(a)) or np.any(a == np.inf):
            raise ValueError(f"{name}: contains NaN or +inf")
        if not np.any(np.isfinite(a)):
            raise ValueError(f"{name}: no token has positive probability (every entry is -inf)")
        s = float(np.exp(a).sum())
        tol = _v.sum_tol(arr.dtype)
        if abs(s - 1) > tol:
            raise ValueError(f"{name}: exp(logq) does not sum to 1 (|sum - 1| = {abs(s - 1):.3g} > {tol:g})")
    return arr


def law_ok(q: jax.Array) -> jax.Array:
    """In-graph: whether ``q`` is a probability vector (finite, non-negative, sum within the
    eager tolerance of its dtype); ``bool[]``."""
    s = jnp.sum(q)
    return jnp.all(jnp.isfinite(q)) & jnp.all(q >= 0) & (jnp.abs(s - 1) <= _v.sum_tol(q.dtype))


def logq_ok(logq: jax.Array) -> jax.Array:
    """In-graph: whether ``logq`` is a log probability vector (no NaN or ``+inf``, some finite
    entry, ``exp`` summing to one within the eager tolerance of its dtype); ``bool[]``."""
    s = jnp.sum(jnp.exp(logq))
    return (~jnp.any(jnp.isnan(logq)) & ~jnp.any(logq == jnp.inf) & jnp.any(jnp.isfinite(logq))
            & (jnp.abs(s - 1) <= _v.sum_tol(logq.dtype)))


def flag_children(tok: jax.Array, valid: jax.Array, ok) -> tuple[jax.Array, jax.Array]:
    """The children flag: when ``ok`` is false every slot is token ``-1`` and invalid."""
    if ok is True:
        return tok, valid
    return jnp.where(ok, tok, -1).astype(jnp.int32), valid & ok


def checked_children(core, key, logq, b):
    """The front door every child sampler shares: ``key``, ``b`` and ``logq`` checked (eagerly:
    ``ValueError`` naming the argument), then ``core(key, logq, b) -> (tokens, valid)``, with
    every slot flagged (token ``-1``, invalid) under ``jit`` when ``logq`` is not a log-law."""
    key = _v.check_key(key)
    b = _v.check_n(b, "b")
    logq = children_logq(logq)
    tok, valid = core(key, logq, b)
    return flag_children(tok, valid, True if _v.is_concrete(logq) else logq_ok(logq))
