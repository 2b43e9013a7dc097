"""The rule contract: draft schemes, verifiers, rules and the registry.

Every acceptance rule in spectheory is a :class:`Rule`: a :class:`DraftScheme` (how the
``n`` drafts are drawn from the draft law ``q``) paired with a :class:`Verifier` (how the
target law ``p`` decides which token to emit given those drafts). The verifier is described
exactly by its *kernel* ``K(y | drafts)``; the exact audit (:func:`spectheory.audit.exact`)
enumerates the draft law against that kernel.

A :class:`DraftScheme` is the only identity of a draft law: trees, bounds, audits and
generation take the object (or its registered name, resolved once by
:func:`spectheory.drafts.scheme`). :func:`make_verifier` builds a :class:`Verifier` from a
rule's mathematics (its uniform-form core and its kernel), so that every verifier has the same
front door and ``verify(key, ...)`` equals ``verify_with_uniforms(uniform(key), ...)`` by
construction. Chain verifiers (token by token, block) are :class:`ChainVerifier` values.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _core
from spectheory import _validation as _v

__all__ = [
    "DraftScheme",
    "Verifier",
    "VerifyResult",
    "ChainVerifier",
    "Rule",
    "make_verifier",
    "register",
    "rule",
    "rules",
]


class VerifyResult(NamedTuple):
    """Outcome of verifying one position.

    Attributes:
      token: the emitted token id in ``[0, V)``, or the flag ``-1`` under ``jax.jit`` when the
        input is invalid (no positive finite mass to sample from, a uniform outside ``[0, 1)``;
        see the jit contract in :mod:`spectheory.verify`).  # shape=(), dtype=int32
      index: position (0-based) of the accepted draft in the draft tuple, or ``-1`` when the
        token was drawn from the residual law (and with the flag).  # shape=(), dtype=int32
    """

    token: jax.Array
    index: jax.Array


def _unbounded(V: int) -> Optional[int]:
    return None


def _at_most_V(V: int) -> Optional[int]:
    return V


class DraftScheme(NamedTuple):
    """How a tuple of ``n`` drafts is drawn from a draft law ``q`` over ``V`` tokens: the one
    identity of a draft law.

    Two schemes are the same draft law iff they have the same ``name`` (the registry refuses a
    second object under a registered name), so a tree, a bound or an audit can check that a
    verifier was built for the law its drafts come from.

    Attributes:
      name: short identifier, e.g. ``"iid"``; unique in the registry.
      sample: ``sample(key, q, n) -> int32[n]``, pure JAX, jit-clean for static ``n``; checks
        its input when called eagerly.
      law: ``law(q, n) -> (tuples int[M, n], probs float[M])``, the exact joint law of the
        ordered draft tuple (host-side, NumPy, float64). Only tuples of positive probability
        are listed.
      children: ``children(key, logq float[V], b) -> (tokens int32[b], valid bool[b])``, the
        log-space sampler a draft tree uses for the ``b`` children of a node: the same law as
        ``sample`` on ``exp(logq)``, jit-clean for static ``b``; when ``logq`` has fewer than
        ``b`` finite entries and the scheme draws distinct tokens, the valid children are a
        prefix (``valid``) whose law is ``law(q, #valid)``. Called eagerly it checks its input
        (``ValueError`` naming ``key``, ``logq`` or ``b``); under ``jit`` an invalid ``logq``
        (NaN, ``+inf``, no finite entry, not normalised) gives every slot token ``-1`` and
        ``valid`` false. ``None`` for schemes trees cannot carry.
      family: the law of the *set* of drafts (what the optimal acceptance depends on), for
        :func:`spectheory.bounds.optimal_acceptance`: ``"iid"``, ``"without_replacement"`` or
        ``"greedy"`` (the ``n - 1`` most likely tokens and one draw from the rest); ``None``
        when no closed form is known.
      min_n: smallest supported number of drafts.
      max_n: ``max_n(V) -> int | None``: largest supported ``n`` for vocabulary size ``V``
        (``None`` means unbounded).
      replacement: whether a draft may repeat (``False``: the ``n`` drafts are distinct, so
        ``n`` is at most the number of tokens with ``q > 0``).
    """

    name: str
    sample: Callable
    law: Callable
    children: Optional[Callable] = None
    family: Optional[str] = None
    min_n: int = 1
    max_n: Callable[[int], Optional[int]] = _unbounded
    replacement: bool = True

    def supports(self, n: int, V: int) -> bool:
        """Whether this scheme can draw ``n`` drafts over a vocabulary of ``V`` tokens."""
        hi = self.max_n(V)
        return n >= self.min_n and (hi is None or n <= hi)

    def fan_out(self, n: int, support: int) -> int:
        """Number of drafts the scheme actually draws when asked for ``n`` from a law with
        ``support`` tokens of positive mass: ``n``, or ``min(n, support)`` for distinct drafts
        (the number of valid children of a tree node)."""
        return int(n) if self.replacement else int(min(n, support))

    def children_law(self, q, n: int):
        """Exact law of the children ``children`` draws with fan-out ``n`` from ``q``:
        ``law(q, fan_out(n, #{q > 0}))`` (host side, float64; ``ValueError`` naming ``q`` or
        ``n``)."""
        n = _v.check_n(n)
        q = np.asarray(_v.as_probs(np.asarray(q, dtype=np.float64), "q"), dtype=np.float64)
        return self.law(q, self.fan_out(n, int(np.sum(q > 0))))


class Verifier(NamedTuple):
    """A lossless acceptance rule for one position, as pure functions (built by
    :func:`make_verifier`).

    Attributes:
      verify: ``verify(key, p, q, drafts) -> VerifyResult``; equal to
        ``verify_with_uniforms(jax.random.uniform(key, (num_uniforms(n),), dtype), p, q, drafts)``.
      kernel: ``kernel(p, q, drafts) -> float[V]``, the exact law of the emitted token given
        the drafts.
      verify_with_uniforms: ``verify_with_uniforms(u, p, q, drafts) -> VerifyResult`` with
        ``u`` a float array of shape ``(num_uniforms(n),)`` of i.i.d. U[0, 1) noise: the same
        decisions for the same ``u``, in any framework.
      num_uniforms: ``num_uniforms(n) -> int``, how many uniforms one position consumes.
      acceptance: optional closed form ``acceptance(p, q, n) -> float`` of the acceptance
        rate under the paired draft scheme, or ``None`` when only enumeration gives it.
      host_only: ``True`` for verifiers that run on the host (e.g. LP-based) and cannot be
        traced by ``jax.jit``.
    """

    verify: Callable
    kernel: Callable
    verify_with_uniforms: Callable
    num_uniforms: Callable[[int], int]
    acceptance: Optional[Callable] = None
    host_only: bool = False


def make_verifier(core: Callable, kernel: Callable, num_uniforms: Callable[[int], int], *,
                  n: Optional[int] = None, distinct: bool = False, check: Optional[Callable] = None,
                  acceptance: Optional[Callable] = None, name: str = "verifier",
                  host_only: bool = False, guard: bool = True) -> Verifier:
    r"""Build a :class:`Verifier` from a rule's mathematics.

    A rule is written as two pure functions of validated inputs, ``p, q: float[V]`` (one
    common floating dtype) and ``drafts: int[n]``:

    * ``core(u, p, q, drafts) -> VerifyResult``: the decision for explicit uniforms
      ``u: float[num_uniforms(n)]`` (already cast to the dtype of ``p``);
    * ``kernel(p, q, drafts) -> float[V]``: the exact law of the emitted token given the drafts.

    The factory adds the front door every verifier shares (probability vectors, a common
    vocabulary, draft ids in range, the number of drafts, distinct drafts for schemes without
    replacement, the rule's own ``check``) and derives the key form from the uniform form,

    .. math:: \mathrm{verify}(k, p, q, \bar x) = \mathrm{verify\_with\_uniforms}
        (\mathrm{uniform}(k, (\mathrm{num\_uniforms}(n),)), p, q, \bar x),

    so the identity holds by construction (the uniforms are drawn in the inputs' floating
    dtype, at least float32). Value checks run on concrete (eager) inputs only; under
    ``jax.jit`` the core is called directly after the shape checks (``guard`` below), unless
    the call runs under :func:`spectheory.checked`, which turns them into checkify checks. The returned functions
    carry the core's and the kernel's docstrings, so ``help(ver.verify_with_uniforms)`` shows
    the rule.

    With ``host_only=True`` the rule runs on the host (NumPy, e.g. an LP solver): the front
    door refuses traced inputs with a ``TypeError``, runs the same value checks (caching the
    checks of ``p, q`` per distinct pair, as a host loop calls it many times with the same
    laws), and calls ``core(u float64[num_uniforms(n)], p, q, drafts int64[n])`` and
    ``kernel(p, q, drafts)`` on NumPy arrays, ``p, q`` in their common floating dtype (at least
    float32); ``verify`` draws the same uniforms from ``key`` as a JAX verifier would.

    Args:
      core: the uniform form ``core(u, p, q, drafts) -> VerifyResult`` (jit it yourself if you
        want one compilation per shape).
      kernel: ``kernel(p, q, drafts) -> float[V]``.
      num_uniforms: ``num_uniforms(n) -> int``.
      n: if given, the only number of drafts the rule takes.
      distinct: the drafts must be distinct tokens of positive draft mass (schemes without
        replacement).
      check: optional extra front-door check ``check(p, q, drafts)`` that raises
        ``ValueError``; it should skip values that are traced (``jax.core.Tracer``).
      acceptance: optional closed form ``acceptance(p, q, n)``.
      name: used in error messages and in the names of the returned functions.
      host_only: the rule is NumPy code run on the host (see above).
      guard: under ``jax.jit``/``vmap`` (traced inputs), wrap the core so that it keeps the
        package's jit contract whatever it does itself: the result is the flag ``-1`` (token
        and index) when the core emits an id outside ``[0, V)`` or accepts a draft outside
        ``[0, V)``, when ``p`` or ``q`` contains NaN/inf or ``p`` is all zero, or when a
        uniform is outside ``[0, 1)``. Costs two sums over ``V`` per call; the built-in rules,
        which keep the contract by construction (``tests/test_jit_contract.py``), pass
        ``False``. Eager calls are never affected (the front door has checked their values).

    Returns:
      :class:`Verifier` (``host_only`` as given).

    Raises:
      TypeError: naming ``core``, ``kernel``, ``num_uniforms``, ``check`` or ``acceptance``
        when it is not callable.

    >>> import jax, jax.numpy as jnp
    >>> from spectheory import VerifyResult
    >>> def core(u, p, q, d):  # accept the draft with probability min(1, p/q), else emit argmax p
    ...     ok = u[0] * q[d[0]] < p[d[0]]
    ...     return VerifyResult(jnp.where(ok, d[0], jnp.argmax(p)).astype(jnp.int32), jnp.where(ok, 0, -1))
    >>> def kernel(p, q, d):
    ...     a = jnp.minimum(1, p[d[0]] / q[d[0]])
    ...     return a * jax.nn.one_hot(d[0], p.shape[0]) + (1 - a) * jax.nn.one_hot(jnp.argmax(p), p.shape[0])
    >>> ver = make_verifier(core, kernel, lambda n: 1, n=1)
    >>> int(ver.verify_with_uniforms(jnp.array([0.9]), jnp.array([0.2, 0.8]), jnp.array([0.6, 0.4]), jnp.array([0])).token)
    1

    References:
      The stateless transformation factory of optax (DeepMind et al., *The DeepMind JAX
      Ecosystem*, 2020) is the model for this design.
    """
    for arg, fn in (("core", core), ("kernel", kernel), ("num_uniforms", num_uniforms)):
        _v.check_callable(fn, arg)
    if check is not None:
        _v.check_callable(check, "check")
    if acceptance is not None:
        _v.check_callable(acceptance, "acceptance")
    if host_only:
        front = functools.partial(_host_inputs, name, n, distinct, check)
        verify_with_uniforms = _host_verify_with_uniforms(front, core, num_uniforms, name)
        verify = _host_verify(verify_with_uniforms, num_uniforms, name)
        kernel_fn = _host_kernel(front, kernel)
    else:
        front = functools.partial(_jax_inputs, n, distinct, check)
        verify_with_uniforms = _jax_verify_with_uniforms(front, core, num_uniforms, guard)
        verify = _jax_verify(verify_with_uniforms, num_uniforms)
        kernel_fn = _jax_kernel(front, kernel)

    _describe(verify_with_uniforms, name, "verify_with_uniforms",
              "``verify_with_uniforms(u, p, q, drafts) -> VerifyResult`` with explicit uniforms "
              "``u: float[num_uniforms(n)]`` in [0, 1).", core)
    _describe(verify, name, "verify",
              "``verify(key, p, q, drafts) -> VerifyResult``: ``verify_with_uniforms`` on "
              "``jax.random.uniform(key, (num_uniforms(n),), dtype)``, ``dtype`` the inputs' "
              "floating dtype (at least float32).", core)
    _describe(kernel_fn, name, "kernel",
              "``kernel(p, q, drafts) -> float[V]``, the exact law of the emitted token given the "
              "drafts.", kernel)
    return Verifier(verify=verify, kernel=kernel_fn, verify_with_uniforms=verify_with_uniforms,
                    num_uniforms=num_uniforms, acceptance=acceptance, host_only=bool(host_only))


def _describe(fn: Callable, name: str, attr: str, summary: str, source: Callable) -> None:
    """Name ``fn`` ``<name>.<attr>`` and give it a docstring: ``summary`` then the rule's own
    docstring (``source``), when it has one."""
    fn.__name__ = attr
    fn.__qualname__ = f"{name}.{attr}"
    doc = f"{name}: {summary}\n\nBuilt by :func:`spectheory.make_verifier`."
    own = inspect.getdoc(source)
    if own:
        doc += f" The rule:\n\n{own}"
    fn.__doc__ = doc


# --- the JAX front door (make_verifier) ---------------------------------------------------------

def _jax_inputs(n, distinct, check, p, q, drafts):
    p, q, drafts = _v.check_position(p, q, drafts, n=n)
    if distinct:
        _v.check_distinct_drafts(q, drafts)
    if check is not None:
        check(p, q, drafts)
    return p, q, drafts


def _num_drafts(drafts) -> int:
    """Number of drafts of a (possibly invalid) draft array, at least 1 (the front door
    reports the fault)."""
    return max(int(np.shape(drafts)[0]) if np.ndim(drafts) else 0, 1)


def _guarded(res: VerifyResult, u, p, q, drafts) -> VerifyResult:
    """The jit contract for a core that does not keep it itself: the flag ``-1`` (token and
    index) when the emitted id is outside ``[0, V)``, when the accepted draft is outside
    ``[0, V)``, when ``p`` or ``q`` has no finite total or ``p`` no positive mass, or when a
    uniform is not finite (the traced front door turns uniforms outside ``[0, 1)`` into NaN)."""
    V = p.shape[-1]
    token, index = jnp.asarray(res.token), jnp.asarray(res.index)
    n = drafts.shape[-1]
    accepted = jnp.take(drafts, jnp.clip(index, 0, n - 1), axis=-1)
    sp, sq = jnp.sum(p, axis=-1), jnp.sum(q, axis=-1)
    bad = (~_core.in_vocab(token, V) | ((index >= 0) & ~_core.in_vocab(accepted, V))
           | ~jnp.isfinite(sp) | ~jnp.isfinite(sq) | ~(sp > 0) | ~jnp.all(jnp.isfinite(u)))
    flag = jnp.asarray(_core.INVALID, jnp.int32)
    return VerifyResult(jnp.where(bad, flag, token).astype(jnp.int32), jnp.where(bad, flag, index).astype(jnp.int32))


def _jax_verify_with_uniforms(front, core, num_uniforms, guard):
    def verify_with_uniforms(uniforms, p, q, drafts) -> VerifyResult:
        p, q, drafts = front(p, q, drafts)
        u = _v.check_uniforms(uniforms, int(num_uniforms(int(drafts.shape[0])))).astype(p.dtype)
        res = core(u, p, q, drafts)
        if guard and not all(_v.is_concrete(x) for x in (u, p, q, drafts)):
            res = _guarded(res, u, p, q, drafts)  # eager inputs were checked by the front door
        return res

    return verify_with_uniforms


def _jax_verify(verify_with_uniforms, num_uniforms):
    def verify(key, p, q, drafts) -> VerifyResult:
        dtype = _core.float_dtype(p, q)
        u = jax.random.uniform(key, (int(num_uniforms(_num_drafts(drafts))),), dtype)
        return verify_with_uniforms(u, p, q, drafts)

    return verify


def _jax_kernel(front, kernel):
    def kernel_fn(p, q, drafts) -> jax.Array:
        return kernel(*front(p, q, drafts))

    return kernel_fn


# --- the host front door (make_verifier(..., host_only=True)) -----------------------------------

def _refuse_traced(name: str, *xs) -> None:
    if any(isinstance(x, jax.core.Tracer) for x in xs):
        raise TypeError(f"{name}: a host-only verifier runs on the host (NumPy) and cannot be traced by "
                        "jax.jit or jax.vmap; call it eagerly")


@functools.lru_cache(maxsize=1024)
def _host_laws_checked(p_bytes: bytes, p_dtype: str, q_bytes: bytes, q_dtype: str) -> None:
    """The front door's checks of ``p, q`` (1-d, numeric), once per distinct pair (a failing
    pair is not cached: it raises again)."""
    p = _v.as_probs(np.frombuffer(p_bytes, dtype=p_dtype), "p")
    q = _v.as_probs(np.frombuffer(q_bytes, dtype=q_dtype), "q")
    _v.same_vocab(p, q)


def _host_inputs(name, n, distinct, check, p, q, drafts):
    """Validated host copies ``(p, q, drafts int64[n])``, ``p, q`` NumPy arrays in their common
    floating dtype (at least float32): the same checks and messages as :func:`_jax_inputs`."""
    _refuse_traced(name, p, q, drafts)
    p_np, q_np, d = np.asarray(p), np.asarray(q), np.asarray(drafts)
    if p_np.ndim == 1 and q_np.ndim == 1 and p_np.dtype.kind in "biuf" and q_np.dtype.kind in "biuf":
        _host_laws_checked(np.ascontiguousarray(p_np).tobytes(), p_np.dtype.str,
                           np.ascontiguousarray(q_np).tobytes(), q_np.dtype.str)
        V = p_np.shape[0]
        if not (d.dtype.kind in "iu" and d.ndim == 1 and d.size >= 1 and (n is None or d.size == n)
                and d.min() >= 0 and d.max() < V):
            _v.check_position(p, q, drafts, n=n)  # raises the front door's error
    else:
        _v.check_position(p, q, drafts, n=n)  # raises, or accepts what the fast path does not cover
    dtype = np.result_type(p_np.dtype, q_np.dtype, np.float32)
    p_np, q_np, d = p_np.astype(dtype), q_np.astype(dtype), d.astype(np.int64)
    if distinct:
        _v.check_distinct_drafts(q_np, d)
    if check is not None:
        check(p_np, q_np, d)
    return p_np, q_np, d


_host_uniforms = jax.jit(lambda key, count, dtype: jax.random.uniform(key, (count,), dtype), static_argnums=(1, 2))


def _host_verify_with_uniforms(front, core, num_uniforms, name):
    def verify_with_uniforms(uniforms, p, q, drafts) -> VerifyResult:
        _refuse_traced(name, uniforms)
        p, q, drafts = front(p, q, drafts)
        count = int(num_uniforms(int(drafts.shape[0])))
        u = np.asarray(uniforms)
        if not (u.dtype.kind == "f" and u.shape == (count,) and np.all(u >= 0) and np.all(u < 1)):
            _v.check_uniforms(uniforms, count)  # raises the front door's error
        return core(u.astype(np.float64), p, q, drafts)

    return verify_with_uniforms


def _host_verify(verify_with_uniforms, num_uniforms, name):
    def verify(key, p, q, drafts) -> VerifyResult:
        _refuse_traced(name, key, p, q, drafts)
        dtype = _core.float_dtype(np.asarray(p), np.asarray(q))  # arrays, not dtypes: no x64 warning
        return verify_with_uniforms(_host_uniforms(key, int(num_uniforms(_num_drafts(drafts))), dtype), p, q, drafts)

    return verify


def _host_kernel(front, kernel):
    def kernel_fn(p, q, drafts) -> np.ndarray:
        p, q, drafts = front(p, q, drafts)
        return np.asarray(kernel(p, q, drafts)).astype(p.dtype)

    return kernel_fn


class ChainVerifier(NamedTuple):
    """A verifier of a draft *chain* of ``gamma`` tokens (token by token, or block
    verification): a value, like a :class:`Rule`.

    Attributes:
      name: short identifier (``"token"``, ``"block"``).
      verify: ``verify(key, p float[gamma+1, V], q float[gamma, V], drafts int[gamma]) ->
        ChainResult``.
      verify_with_uniforms: ``verify_with_uniforms(u float[num_uniforms(gamma)], p, q, drafts)``.
      kernel: ``kernel(p, q, drafts) -> float[gamma+1, V]``, the exact joint law of (number of
        accepted drafts, next token).
      num_uniforms: ``num_uniforms(gamma) -> int``.
      description: one line for listings.
    """

    name: str
    verify: Callable
    verify_with_uniforms: Callable
    kernel: Callable
    num_uniforms: Callable[[int], int]
    description: str = ""


class Rule(NamedTuple):
    """A named acceptance rule: a draft scheme and the verifier built for it.

    Attributes:
      name: registry name, e.g. ``"single"``.
      drafts: the :class:`DraftScheme` whose law the verifier assumes.
      verifier: the :class:`Verifier`.
      fixed_n: if not ``None``, the only number of drafts the rule is defined for.
      description: one line shown by ``spectheory compare``.
    """

    name: str
    drafts: DraftScheme
    verifier: Verifier
    fixed_n: Optional[int] = None
    description: str = ""

    def supports(self, n: int, V: int) -> bool:
        """Whether the rule is defined for ``n`` drafts over ``V`` tokens."""
        if self.fixed_n is not None and n != self.fixed_n:
            return False
        return self.drafts.supports(n, V)


_REGISTRY: dict[str, Rule] = {}
_SCHEMES: dict[str, DraftScheme] = {}


# --- structure -------------------------------------------------------------------------------

def _is_int(x) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, np.integer))


def _need(ok: bool, field: str, what: str, value, error=TypeError) -> None:
    if not ok:
        shown = type(value).__name__ if error is TypeError else repr(value)
        raise error(f"{field}: expected {what}, got {shown}")


def _check_callable(obj, field: str, attr: str, optional: bool = False) -> None:
    f = getattr(obj, attr)
    _need(callable(f) or (optional and f is None), f"{field}.{attr}",
          "a callable" + (" or None" if optional else ""), f)


def check_scheme(s, name: str = "drafts") -> DraftScheme:
    """The structure of a :class:`DraftScheme`: the type of every field (``TypeError`` or
    ``ValueError`` naming the field, e.g. ``"drafts.law: expected a callable, got int"``).

    Returns ``s``.
    """
    _need(isinstance(s, DraftScheme), name, "a spectheory.DraftScheme", s)
    _need(isinstance(s.name, str), f"{name}.name", "a non-empty str", s.name)
    _need(bool(s.name.strip()), f"{name}.name", "a non-empty str", s.name, ValueError)
    for attr in ("sample", "law", "max_n"):
        _check_callable(s, name, attr)
    _check_callable(s, name, "children", optional=True)
    _need(s.family is None or isinstance(s.family, str), f"{name}.family", "a str or None", s.family)
    _need(_is_int(s.min_n), f"{name}.min_n", "an int >= 1", s.min_n)
    _need(int(s.min_n) >= 1, f"{name}.min_n", "an int >= 1", s.min_n, ValueError)
    _need(isinstance(s.replacement, (bool, np.bool_)), f"{name}.replacement", "a bool", s.replacement)
    return s


def check_verifier(v, name: str = "verifier") -> Verifier:
    """The structure of a :class:`Verifier` (callables where the contract says so, ``host_only``
    a bool); ``TypeError`` naming the field. Returns ``v``."""
    _need(isinstance(v, Verifier), name, "a spectheory.Verifier (built by spectheory.make_verifier)", v)
    for attr in ("verify", "kernel", "verify_with_uniforms", "num_uniforms"):
        _check_callable(v, name, attr)
    _check_callable(v, name, "acceptance", optional=True)
    _need(isinstance(v.host_only, (bool, np.bool_)), f"{name}.host_only", "a bool", v.host_only)
    return v


def check_rule(r, name: str = "rule") -> Rule:
    """The structure of a :class:`Rule`: a non-empty ``name``, a :class:`DraftScheme`
    ``drafts`` and a :class:`Verifier` ``verifier`` (every field checked by
    :func:`check_scheme` and :func:`check_verifier`), ``fixed_n`` ``None`` or an int the scheme
    allows, a str ``description``. ``TypeError`` or ``ValueError`` naming the field.

    Returns ``r``.
    """
    _need(isinstance(r, Rule), name, "a spectheory.Rule", r)
    _need(isinstance(r.name, str), "name", "a non-empty str", r.name)
    _need(bool(r.name.strip()), "name", "a non-empty str", r.name, ValueError)
    check_scheme(r.drafts, "drafts")
    check_verifier(r.verifier, "verifier")
    if r.fixed_n is not None:
        _need(_is_int(r.fixed_n), "fixed_n", "None or an int >= 1", r.fixed_n)
        _need(int(r.fixed_n) >= max(1, int(r.drafts.min_n)), "fixed_n",
              f"None or an int >= the scheme's min_n ({r.drafts.min_n})", r.fixed_n, ValueError)
    _need(isinstance(r.description, str), "description", "a str", r.description)
    return r


# --- the exact audit a rule passes before it is trusted ---------------------------------------

#: Largest ``max |output - p|`` (float64 enumeration) the registration audit accepts.
AUDIT_TOL = 1e-10
#: Numbers of drafts the registration audit tries (those the rule supports).
AUDIT_NS = (1, 2, 3)
#: Seed of the registration audit's random laws (the same cases for every rule).
AUDIT_SEED = 20231

#: Verdicts of :func:`audit_rule` per rule value: ``None`` (passed) or the refusal message.
_VERDICTS: dict = {}


def audit_cases(r: Rule) -> list:
    r"""The small cases :func:`audit_rule` enumerates: ``[(p, q, n)]`` in float64.

    For every ``n`` in :data:`AUDIT_NS` the rule supports over ``V = 4`` tokens, three seeded
    random pairs (Dirichlet(1/2)): ``p == q``, a ``q`` with a zero (so ``n = 3`` distinct drafts
    exhaust its support), and a ``p`` with a zero against a full-support ``q``. One vocabulary
    size keeps the kernel compilations few (one per padded number of draft tuples).
    """
    rng = np.random.default_rng(AUDIT_SEED)
    out = []
    for n in AUDIT_NS:
        equal = rng.dirichlet(np.full(4, 0.5))
        p1, q1 = rng.dirichlet(np.full(4, 0.5)), rng.dirichlet(np.full(4, 0.5))
        q1[1] = 0.0
        p2, q2 = rng.dirichlet(np.full(4, 0.5)), rng.dirichlet(np.full(4, 0.5))
        p2[2] = 0.0
        for p, q in ((equal, equal.copy()), (p1, q1), (p2, q2)):
            p, q = p / p.sum(), q / q.sum()
            if r.supports(n, len(p)) and r.drafts.fan_out(n, int(np.sum(q > 0))) == n:
                out.append((p, q, n))
    return out


def _refusal(r: Rule) -> Optional[str]:
    """Run the audit; the refusal message, or ``None`` when the rule passes."""
    from spectheory.audit import exact  # the audit imports the contract types

    try:
        cases = audit_cases(r)
    except Exception as e:  # e.g. a max_n that does not return an int
        return (f"verifier: the exact audit of rule {r.name!r} could not choose its cases (Rule.supports / "
                f"DraftScheme.max_n raised): {type(e).__name__}: {e}")
    if not cases:
        return (f"verifier: rule {r.name!r} supports none of n = {AUDIT_NS} drafts over V = 4 tokens, so "
                "the exact audit cannot check it")
    with jax.enable_x64(True):
        for p, q, n in cases:
            case = f"n={n}, p={np.round(p, 6).tolist()}, q={np.round(q, 6).tolist()}"
            try:
                res = exact(r, p, q, n)
                err = float(res.max_error)
                claimed = None if r.verifier.acceptance is None else float(r.verifier.acceptance(p, q, n))
            except Exception as e:  # a malformed rule: refuse it, whatever it raised
                return (f"verifier: the exact audit of rule {r.name!r} (draft scheme {r.drafts.name!r}) failed at "
                        f"{case}: {type(e).__name__}: {e}")
            if not err <= AUDIT_TOL:  # NaN refused too
                return (f"verifier: rule {r.name!r} is not lossless with draft scheme {r.drafts.name!r}: the exact "
                        f"audit gives max |output - p| = {err:.3g} (> {AUDIT_TOL:g}) at {case}")
            if claimed is not None and not abs(claimed - res.acceptance) <= 1e-9:
                return (f"verifier.acceptance: rule {r.name!r} claims acceptance {claimed:.12g} but the exact audit "
                        f"gives {res.acceptance:.12g} at {case}")
    return None


def audit_rule(r: Rule) -> Rule:
    r"""Refuse a rule that is not lossless: its structure (:func:`check_rule`), then the exact
    audit (:func:`spectheory.audit.exact`, float64) on :func:`audit_cases`:

    .. math:: \max_y \Big|\sum_{\bar x} Q(\bar x) K(y \mid \bar x) - p(y)\Big| \le
        \mathrm{AUDIT\_TOL} = 10^{-10}

    for every case, and a closed-form ``verifier.acceptance`` (if any) equal to the enumerated
    acceptance to ``1e-9``. The verdict is cached per rule value, so it runs once.

    Returns ``r``.

    Raises:
      TypeError, ValueError: a malformed rule (naming the field); ``ValueError`` naming
        ``verifier`` with the max error and the case when the audit fails (or cannot run).

    >>> import spectheory
    >>> from spectheory.testing import naive_independent_rule
    >>> audit_rule(naive_independent_rule)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: verifier: rule 'naive-independent' is not lossless with draft scheme 'iid': ...
    """
    check_rule(r)
    try:
        verdict = _VERDICTS[r]
    except KeyError:
        verdict = _VERDICTS[r] = _refusal(r)
    except TypeError:  # an unhashable field: no cache
        verdict = _refusal(r)
    if verdict is not None:
        raise ValueError(verdict)
    return r


def trusted(r: Rule) -> Rule:
    """A rule decoding may run: the registered object of its name (audited when it was
    registered, or registered with ``audit=False`` on purpose), else one that passes
    :func:`audit_rule`. Returns ``r``."""
    check_rule(r)
    if _REGISTRY.get(r.name) is r:
        return r
    return audit_rule(r)


def _check_scheme_name(s: DraftScheme, overwrite: bool) -> None:
    old = _SCHEMES.get(s.name)
    if old is not None and old is not s and old != s and not overwrite:
        raise ValueError(f"a different draft scheme named {s.name!r} is already registered; "
                         "give the new scheme another name (a scheme's name is its identity)")


def register(new: Union[Rule, DraftScheme], *, overwrite: bool = False, audit: bool = True):
    r"""Add a rule (and its draft scheme) or a draft scheme to the registry, so that audits,
    the conformance suite, ``spectheory compare``, draft trees, bounds and
    :func:`spectheory.generate` pick it up.

    Nothing wrong gets in: the structure is checked first (every field's type, naming the
    field), then a rule must pass the exact audit (:func:`spectheory.audit.exact`, float64) on
    small seeded random cases over 4 tokens: for every ``n`` in ``1, 2, 3`` the rule
    supports, ``p == q``, a ``q`` with a zero and a ``p`` with a zero (nine cases at most), each
    with

    .. math:: \max_y |\mathrm{output}(y) - p(y)| \le 10^{-10},

    and a closed-form ``acceptance`` equal to the enumerated one. A refused registration
    raises and leaves the registry as it was. ``audit=False`` skips the audit (not the
    structure check) for rules too expensive to enumerate, e.g. host-side LP rules: you then
    vouch for the rule (audit it with :func:`spectheory.audit.exact` and
    :func:`spectheory.testing.check_lossless` yourself).

    Args:
      new: a :class:`Rule` or a :class:`DraftScheme`. A rule's scheme is registered with it
        when its name is new.
      overwrite: replace an existing entry of the same name instead of raising.
      audit: run the exact audit before accepting a rule (default ``True``).

    Returns:
      ``new``.

    Raises:
      TypeError: if ``new`` is neither, or a field has the wrong type (the message names it).
      ValueError: if the name is taken (by another rule, or by a different scheme) and
        ``overwrite`` is false; if a field has a wrong value; if the audit fails (the message
        gives the max error and the case).

    >>> import spectheory
    >>> from spectheory.testing import naive_independent_rule  # the classic wrong rule
    >>> try:
    ...     spectheory.register(naive_independent_rule)
    ... except ValueError as e:
    ...     print(str(e).split(" with ")[0])
    verifier: rule 'naive-independent' is not lossless
    >>> "naive-independent" in spectheory.rules()
    False
    """
    if isinstance(new, DraftScheme):
        check_scheme(new, "new")
        _check_scheme_name(new, overwrite)
        _SCHEMES[new.name] = new
        return new
    if not isinstance(new, Rule):
        raise TypeError(f"new: register expects a spectheory.Rule or DraftScheme, got {type(new).__name__}")
    check_rule(new)
    if not isinstance(audit, (bool, np.bool_)):
        raise TypeError(f"audit: expected a bool, got {type(audit).__name__}")
    if new.name in _REGISTRY and not overwrite:
        raise ValueError(f"a rule named {new.name!r} is already registered")
    _check_scheme_name(new.drafts, overwrite)
    if audit:
        try:
            audit_rule(new)
        except ValueError as e:
            raise ValueError(f"{e}; not registered (register(rule, audit=False) skips the audit)") from None
    _SCHEMES[new.drafts.name] = new.drafts
    _REGISTRY[new.name] = new
    return new


def scheme(s: Union[str, DraftScheme]) -> DraftScheme:
    """Resolve a draft scheme given as an object or a registered name (see
    :func:`spectheory.drafts.scheme`)."""
    if isinstance(s, DraftScheme):
        return s
    if not isinstance(s, str):
        raise TypeError(f"scheme: expected a DraftScheme or a registered name, got {type(s).__name__}")
    try:
        return _SCHEMES[s]
    except KeyError:
        known = ", ".join(sorted(_SCHEMES))
        raise ValueError(f"scheme: unknown draft scheme {s!r}; registered: {known}") from None


def schemes() -> list[str]:
    """Names of all registered draft schemes, in registration order."""
    return list(_SCHEMES)


def rule(name: Union[str, Rule]) -> Rule:
    """Return the registered :class:`Rule` called ``name`` (a :class:`Rule` is returned as is).

    Args:
      name: a registered rule name (see :func:`rules`), or a :class:`Rule`.

    Returns:
      The registered :class:`Rule` of that name, or ``name`` itself when it is a :class:`Rule`
      (registered or not).

    Raises:
      ValueError: naming ``name`` when it is not a registered name (including a non-``str``,
        non-:class:`Rule` value); the message lists the registered rules.

    >>> import spectheory
    >>> spectheory.rule("single").drafts.name
    'iid'
    """
    if isinstance(name, Rule):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"name: unknown rule {name!r}; registered rules: {known}") from None


def as_rule(r, name: str = "rule") -> Rule:
    """A :class:`Rule` argument: a ``Rule`` as is, or a registered rule name looked up once;
    else ``ValueError`` naming the argument."""
    if isinstance(r, Rule):
        return r
    if isinstance(r, str) and r in _REGISTRY:
        return _REGISTRY[r]
    known = ", ".join(sorted(_REGISTRY))
    raise ValueError(f"{name}: expected a Rule or a registered rule name ({known}), got {r!r}")


def rules() -> list[str]:
    """Names of all registered rules, in registration order.

    Returns:
      A new ``list`` of ``str`` (the built-in rules first, then those added with
      :func:`register`); each name resolves with :func:`rule`.

    >>> import spectheory
    >>> "single" in spectheory.rules()
    True
    """
    return list(_REGISTRY)
