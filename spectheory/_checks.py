"""Value checks inside ``jax.jit`` and ``jax.vmap`` on request, built on
``jax.experimental.checkify`` (private; :func:`checked` and :func:`checkify` are public).

The front door (:mod:`spectheory._validation`) raises a ``ValueError`` on concrete inputs.
Traced inputs (under ``jit``, or under ``vmap``, even eager) have no values to look at, so by
default their value checks are skipped and the jitted code stays branch-free. While a function
wrapped by :func:`checked` or :func:`checkify` is being traced, a flag (:func:`active`) turns
the same checks into ``checkify.check`` calls on the traced values. The flag is a JAX user
context, part of the ``jit`` cache key, so a package function traced with checks never
shares a compilation with the same function traced without them.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable

import jax
import numpy as np
from jax.experimental import checkify as _checkify

__all__ = ["checked", "checkify"]

_make_user_context = getattr(jax, "make_user_context", None)
if _make_user_context is not None:
    _FLAG = _make_user_context(False)

    def active() -> bool:
        """Whether traced value checks are on (only while tracing under :func:`checked`)."""
        return bool(_FLAG.value)

    def _tracing_checks():
        return _FLAG(True)
else:  # older JAX: a context variable (the jit cache does not see it)
    _VAR = contextvars.ContextVar("spectheory_traced_checks", default=False)

    def active() -> bool:
        """Whether traced value checks are on (only while tracing under :func:`checked`)."""
        return _VAR.get()

    @contextlib.contextmanager
    def _tracing_checks():
        token = _VAR.set(True)
        try:
            yield
        finally:
            _VAR.reset(token)


def require(ok, message: str) -> None:
    """``checkify.check(ok, message)``: record a failed front-door check on traced values.

    Args:
      ok: bool array (any shape; every entry must hold), traced.
      message: the ``ValueError`` message, naming the argument (no format fields).
    """
    _checkify.check(jax.numpy.all(ok), message.replace("{", "{{").replace("}", "}}"))


def _with_checks(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with _tracing_checks():
            return fn(*args, **kwargs)

    return traced


def checkify(fn: Callable) -> Callable:
    """The functional form of :func:`checked`: ``fn`` with spectheory's front-door value checks
    as ``checkify`` checks, returning ``(error, out)`` for composing inside your own ``jit``.

    ``checkify(fn)(*args)`` is ``jax.experimental.checkify.checkify(fn)(*args)`` traced with
    the package's value checks on (NaN/inf, negative entries, rows summing to one, token ids
    in range, uniforms in [0, 1), distinct drafts, logits): ``error.get()`` is ``None`` or the
    message of the first failed check, which names the argument, and ``error.throw()`` raises
    it (as checkify's ``JaxRuntimeError``). Nothing is jitted here and static arguments are
    yours to handle (``functools.partial``).

    Args:
      fn: a function of arrays calling spectheory functions, traceable by ``jax.jit``.

    Returns:
      ``fn`` returning ``(checkify.Error, out)``.

    Raises:
      TypeError: ``fn`` is not callable.

    >>> import jax, jax.numpy as jnp
    >>> from spectheory.verify import SINGLE
    >>> f = jax.jit(checkify(SINGLE.kernel))
    >>> err, K = f(jnp.array([0.5, 0.5]), jnp.array([0.9, 0.1]), jnp.array([1]))  # p(1) > q(1): kept
    >>> err.get() is None, K.tolist()
    (True, [0.0, 1.0])
    >>> err, _ = f(jnp.array([0.5, jnp.nan]), jnp.array([0.9, 0.1]), jnp.array([1]))
    >>> err.get().startswith("p: contains NaN or inf")
    True
    """
    if not callable(fn):  # (_validation imports this module, so its check_callable is out of reach)
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    return _checkify.checkify(_with_checks(fn), errors=_checkify.user_checks)




def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _message(err) -> str | None:
    msg = err.get()
    if msg is None:
        return None
    return msg.split(" (`check` failed)")[0]


def checked(fn: Callable) -> Callable:
    """``fn`` jitted with spectheory's front-door value checks running inside ``jit`` and
    ``vmap``: a ``ValueError`` naming the argument when a check fails.

    Plain ``jax.jit`` (and ``jax.vmap``, also when it runs eagerly) skips every value check,
    because the inputs are tracers with no values; the package then only keeps its jit
    contract (no token id outside ``[0, V)`` but the flag -1, no accepted out-of-range draft,
    NaN in gives NaN or -1 out). ``checked(fn)`` traces ``fn`` with the checks turned into
    ``jax.experimental.checkify`` checks on the traced values (NaN/inf, negative entries, rows
    summing to one, token ids in ``[0, V)``, uniforms in [0, 1), distinct drafts where the
    scheme needs them, logits with no NaN/+inf), jits it, and raises the first failed check
    as ``ValueError`` with the front door's message. On valid input the output equals
    ``fn``'s. This is the answer for eager ``jax.vmap``, too: ``checked(jax.vmap(f))`` checks
    every element of the batch (eager ``jax.vmap(f)`` itself checks none).

    Array arguments (``jax.Array``, NumPy arrays and scalars, typed keys), anywhere in the
    argument pytrees, are traced; every other leaf (Python numbers, ``None``, strings,
    schemes) is static and must be hashable (one compilation per distinct value), so
    ``checked(chain_from_logits)(key, tl, dl, d, 0.7)`` takes the temperature as the
    front door expects. The checks are on only while ``fn`` is traced under this wrapper;
    ordinary jitted calls of the same functions stay branch-free and are not recompiled.

    Args:
      fn: a function of arrays calling spectheory functions, traceable by ``jax.jit``.

    Returns:
      a function with ``fn``'s signature and output.

    Raises:
      TypeError: ``fn`` is not callable.
      ValueError: (from the returned function) the first failed check, naming the argument.

    >>> import jax, jax.numpy as jnp
    >>> import spectheory
    >>> from spectheory import verify
    >>> chain = spectheory.checked(verify.chain)
    >>> p = jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> int(chain(jax.random.key(0), p, p[:2], jnp.array([1, 0])).num_accepted)
    2
    >>> chain(jax.random.key(0), p, p[:2], jnp.array([1, 5]))
    Traceback (most recent call last):
    ...
    ValueError: drafts: token id out of range [0, 2)
    >>> batched = spectheory.checked(jax.vmap(verify.chain))
    >>> keys = jax.random.split(jax.random.key(0), 2)
    >>> batched(keys, jnp.stack([p, p]), jnp.stack([p[:2], jnp.full((2, 2), jnp.nan)]), jnp.array([[1, 0], [0, 0]]))
    Traceback (most recent call last):
    ...
    ValueError: q: contains NaN or inf
    """
    if not callable(fn):  # (_validation imports this module, so its check_callable is out of reach)
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    cache: dict = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        dynamic = tuple(i for i, x in enumerate(leaves) if _is_array(x))
        static = tuple((i, x) for i, x in enumerate(leaves) if not _is_array(x))
        key = (treedef, dynamic, static)
        try:
            run = cache.get(key)
        except TypeError:
            raise TypeError(f"checked({getattr(fn, '__name__', 'fn')}): a non-array argument is not hashable; "
                            "pass arrays for traced values and hashable Python values for static ones") from None
        if run is None:
            fixed = dict(static)

            def call(*dyn):
                it = iter(dyn)
                full = [next(it) if i not in fixed else fixed[i] for i in range(len(leaves))]
                a, kw = jax.tree_util.tree_unflatten(treedef, full)
                return fn(*a, **kw)

            run = cache[key] = jax.jit(checkify(call))
        err, out = run(*[leaves[i] for i in dynamic])
        msg = _message(err)
        if msg is not None:
            raise ValueError(msg)
        return out

    return wrapper
