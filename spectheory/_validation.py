"""The validating front door (private).

Shape, rank and dtype faults are raised at trace time, always. Value faults (NaN/inf,
negative entries, rows not summing to one, draft ids out of range, uniforms outside
[0, 1), repeated drafts) raise a ``ValueError`` naming the argument on concrete arrays, i.e.
when a public function is called eagerly. On traced arrays there are no values to check:

* under ``jax.jit``, and under ``jax.vmap`` **also when it runs eagerly** (its inputs are
  batch tracers), the value checks are skipped and the core stays branch-free; the package
  then keeps only its jit contract (no token id outside ``[0, V)`` but the flag -1, no
  accepted out-of-range draft, NaN in gives NaN or -1 out; uniforms outside [0, 1) become
  NaN, see :func:`check_uniforms`);
* while a function wrapped by :func:`spectheory.checked` (or :func:`spectheory.checkify`) is
  traced, the same checks run on the traced values as ``jax.experimental.checkify`` checks
  with the same messages (:func:`spectheory._checks.require`), inside ``jit`` and ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _checks

#: Largest allowed ``|sum(p) - 1|`` for float64 inputs.
SUM_TOL_F64 = 1e-8
#: Largest allowed ``|sum(p) - 1|`` for float32 (and narrower) inputs.
SUM_TOL_F32 = 1e-4


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer inside ``jit``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def sum_tol(dtype) -> float:
    """Tolerance on ``|sum - 1|`` for a probability vector of ``dtype``."""
    return SUM_TOL_F64 if jnp.dtype(dtype) == jnp.float64 else SUM_TOL_F32


def as_probs(x, name: str, *, ndim: int | None = 1) -> jax.Array:
    """Check that ``x`` is a (batch of) probability vector(s) along the last axis.

    Args:
      x: array-like of probabilities.
      name: argument name used in error messages.
      ndim: required rank, or ``None`` for any rank >= 1.

    Returns:
      ``x`` as a floating ``jax.Array``.

    Raises:
      ValueError: wrong rank, empty last axis, non-float dtype, NaN/inf, negative entries, or
        rows not summing to one within :func:`sum_tol`.
    """
    if is_concrete(x):
        arr = jnp.asarray(x)
    else:
        arr = x
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == bool:
            arr = arr.astype(jnp.float32)
        else:
            raise ValueError(f"{name}: expected a floating array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {tuple(arr.shape)}")
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name}: expected a non-empty last axis, got shape {tuple(arr.shape)}")
    if is_concrete(arr):
        a = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: contains NaN or inf")
        if np.any(a < 0):
            raise ValueError(f"{name}: contains negative entries (min {a.min():.3g})")
        s = a.sum(axis=-1)
        tol = sum_tol(arr.dtype)
        bad = np.abs(s - 1) > tol
        if np.any(bad):
            worst = float(np.max(np.abs(s - 1)))
            raise ValueError(
                f"{name}: does not sum to 1 along the last axis (|sum - 1| = {worst:.3g} > {tol:g})"
            )
    elif _checks.active():
        tol = sum_tol(arr.dtype)
        _checks.require(jnp.isfinite(arr), f"{name}: contains NaN or inf")
        _checks.require(arr >= 0, f"{name}: contains negative entries")
        _checks.require(jnp.abs(jnp.sum(arr, axis=-1) - 1) <= tol,
                        f"{name}: does not sum to 1 along the last axis (|sum - 1| > {tol:g})")
    return arr


def as_logits(x, name: str, *, ndim: int | None = None) -> jax.Array:
    """Check a logits array: floating, right rank, no NaN (``-inf`` allowed, ``+inf`` not), no
    row entirely ``-inf`` (values: concrete arrays, or traced under :func:`spectheory.checked`)."""
    arr = jnp.asarray(x) if is_concrete(x) else x
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(f"{name}: expected a floating array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {tuple(arr.shape)}")
    if is_concrete(arr):
        a = np.asarray(arr, dtype=np.float64)
        if np.any(np.isnan(a)) or np.any(a == np.inf):
            raise ValueError(f"{name}: contains NaN or +inf")
        if np.any(np.all(a == -np.inf, axis=-1)):
            raise ValueError(f"{name}: a row is entirely -inf (no token has positive probability)")
    elif _checks.active():
        _checks.require(~jnp.isnan(arr) & (arr != jnp.inf), f"{name}: contains NaN or +inf")
        _checks.require(jnp.any(arr != -jnp.inf, axis=-1),
                        f"{name}: a row is entirely -inf (no token has positive probability)")
    return arr


def as_tokens(x, name: str, V: int, *, ndim: int | None = 1, length: int | None = None) -> jax.Array:
    """Check an array of token ids: integer dtype, right rank/length, values in ``[0, V)``."""
    arr = jnp.asarray(x) if is_concrete(x) else x
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ValueError(f"{name}: expected integer token ids, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {tuple(arr.shape)}")
    if length is not None and arr.shape[-1] != length:
        raise ValueError(f"{name}: expected length {length} on the last axis, got {arr.shape[-1]}")
    if is_concrete(arr) and arr.size:
        a = np.asarray(arr)
        if a.min() < 0 or a.max() >= V:
            raise ValueError(f"{name}: token id out of range [0, {V}) (got {a.min()}..{a.max()})")
    elif not is_concrete(arr) and arr.size and _checks.active():
        _checks.require((arr >= 0) & (arr < V), f"{name}: token id out of range [0, {V})")
    return arr


def same_vocab(p, q, pname: str = "p", qname: str = "q") -> int:
    """Check that ``p`` and ``q`` share the vocabulary axis and return ``V``."""
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"{pname} and {qname} must have the same vocabulary size, got {p.shape[-1]} and {q.shape[-1]}"
        )
    return int(p.shape[-1])


def check_n(n, name: str = "n", *, V: int | None = None, replacement: bool = True, support=None) -> int:
    """Check a number of drafts: a positive Python int; at most ``V`` (and the support of
    ``q`` when given) for schemes without replacement."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name}: expected a positive int, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"{name}: expected a positive int, got {n}")
    if not replacement and V is not None and n > V:
        raise ValueError(f"{name}={n} is too large for drafts without replacement over V={V} tokens")
    if not replacement and support is not None and n > support:
        raise ValueError(
            f"{name}={n} is too large for drafts without replacement: q has only {support} tokens of positive mass"
        )
    return n


def check_position(p, q, drafts, *, n: int | None = None):
    """Front-door checks shared by the one-position verifiers.

    Returns ``(p, q, drafts)`` with ``p`` and ``q`` cast to their common floating dtype.
    """
    p = as_probs(p, "p")
    q = as_probs(q, "q")
    V = same_vocab(p, q)
    drafts = as_tokens(drafts, "drafts", V, length=n)
    if drafts.shape[-1] < 1:
        raise ValueError("drafts: expected at least one draft")
    dtype = jnp.result_type(p.dtype, q.dtype)
    return p.astype(dtype), q.astype(dtype), drafts


def check_uniforms(u, count: int, name: str = "uniforms") -> jax.Array:
    """Check explicit noise: a floating array of shape ``(count,)`` with values in ``[0, 1)``.

    Concrete values outside [0, 1) (or NaN) raise. Traced ones cannot: if any is outside
    [0, 1), every uniform is returned as NaN, so no coin passes and the sampler returns the
    flag -1 (:func:`spectheory._core.sample_weighted`): invalid noise never decides a token.
    """
    arr = jnp.asarray(u) if is_concrete(u) else u
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise ValueError(f"{name}: expected floating uniforms, got dtype {arr.dtype}")
    if arr.shape != (count,):
        raise ValueError(f"{name}: expected shape ({count},), got {tuple(arr.shape)}")
    if is_concrete(arr):
        a = np.asarray(arr)
        if np.any(~(a >= 0)) or np.any(a >= 1):
            raise ValueError(f"{name}: values must lie in [0, 1)")
        return arr
    ok = (arr >= 0) & (arr < 1)
    if _checks.active():
        _checks.require(ok, f"{name}: values must lie in [0, 1)")
    return jnp.where(jnp.all(ok), arr, jnp.nan).astype(arr.dtype)


def support_size(q) -> int | None:
    """Number of tokens with ``q > 0`` (summed over the last axis, minimum over rows), or
    ``None`` when ``q`` is traced."""
    if not is_concrete(q):
        return None
    a = np.asarray(q)
    return int(np.min(np.sum(a > 0, axis=-1))) if a.size else 0


def check_distinct_drafts(q, drafts, name: str = "drafts") -> None:
    """Checks for draft tuples of a scheme without replacement (concrete arrays only).

    Raises ``ValueError`` when the tuple has more drafts than ``q`` has tokens of positive
    mass, or when a draft id repeats.
    """
    support = support_size(q)
    n = int(drafts.shape[-1])
    if support is not None:
        check_n(n, name=f"{name} (n)", V=int(q.shape[-1]), replacement=False, support=support)
    elif _checks.active():
        _checks.require(jnp.sum(q > 0, axis=-1) >= n,
                        f"{name} (n)={n} is too large for drafts without replacement: q has fewer than {n} "
                        "tokens of positive mass")
    if is_concrete(drafts):
        d = np.asarray(drafts).reshape(-1, n)
        srt = np.sort(d, axis=-1)
        if n > 1 and np.any(srt[:, 1:] == srt[:, :-1]):
            raise ValueError(f"{name}: draft ids must be distinct for drafts without replacement, got {d.tolist()}")
    elif n > 1 and _checks.active():
        srt = jnp.sort(drafts, axis=-1)
        _checks.require(srt[..., 1:] != srt[..., :-1],
                        f"{name}: draft ids must be distinct for drafts without replacement")


def check_branching(branching, name: str = "branching") -> tuple[int, ...]:
    """Per-level fan-outs of a draft tree: a non-empty sequence of positive ints (no bools),
    returned as a tuple, else ``ValueError`` naming the argument."""
    try:
        b = tuple(branching)
    except TypeError:
        raise ValueError(f"{name}: expected a non-empty sequence of positive ints, got {branching!r}") from None
    if not b or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1 for x in b):
        raise ValueError(f"{name}: expected a non-empty sequence of positive ints, got {branching!r}")
    return tuple(int(x) for x in b)


def check_key(key, name: str = "key") -> jax.Array:
    """Check a ``jax.random`` key: a typed key array of shape ``()`` (``jax.random.key``) or a
    raw ``uint32[2]`` key (``jax.random.PRNGKey``); else ``ValueError`` naming the argument.
    Tracers pass (a key's shape and dtype are known at trace time and are checked)."""
    if key is None:
        raise ValueError(f"{name}: a jax.random key is required, got None")
    if not hasattr(key, "dtype") or not hasattr(key, "shape"):
        raise ValueError(f"{name}: expected a jax.random key, got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name}: expected a single key (shape ()), got a key array of shape {tuple(key.shape)}")
        return key
    if key.dtype == jnp.uint32 and tuple(key.shape) == (2,):
        return jnp.asarray(key)
    raise ValueError(
        f"{name}: expected a jax.random key (jax.random.key(seed)), got an array of dtype {key.dtype} "
        f"and shape {tuple(key.shape)}"
    )


def check_count(n, name: str, *, minimum: int = 1) -> int:
    """Check a count (sample size, number of steps, ...): a Python or NumPy int (no bool)
    that is ``>= minimum``, returned as an ``int``; else ``ValueError`` naming the argument."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{name}: expected an int >= {minimum}, got {n!r}")
    if int(n) < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {int(n)}")
    return int(n)


def check_callable(fn, name: str):
    """``fn`` if it is callable, else ``TypeError`` naming the argument."""
    if not callable(fn):
        raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
    return fn
