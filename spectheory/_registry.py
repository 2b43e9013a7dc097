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
      token: the emitted token id.  # shape=(), dtype=int32
      index: position (0-based) of the accepted draft in the draft tuple, or ``-1`` when the
        token was drawn from the residual law.  # shape=(), dtype=int32
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
        ``sample`` on ``exp(logq)``, never raising, jit-clean for static ``b``; when ``logq``
        has fewer than ``b`` finite entries and the scheme draws distinct tokens, the valid
        children are a prefix (``valid``) whose law is ``law(q, #valid)``. ``None`` for schemes
        trees cannot carry.
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
        ``law(q, fan_out(n, #{q > 0}))`` (host side, float64)."""
        q = np.asarray(q, dtype=np.float64)
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
                  host_only: bool = False) -> Verifier:
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
    ``jax.jit`` the core is called directly after the shape checks. The returned functions
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

    Returns:
      :class:`Verifier` (``host_only`` as given).

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
    if host_only:
        front = functools.partial(_host_inputs, name, n, distinct, check)
        verify_with_uniforms = _host_verify_with_uniforms(front, core, num_uniforms, name)
        verify = _host_verify(verify_with_uniforms, num_uniforms, name)
        kernel_fn = _host_kernel(front, kernel)
    else:
        front = functools.partial(_jax_inputs, n, distinct, check)
        verify_with_uniforms = _jax_verify_with_uniforms(front, core, num_uniforms)
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


def _jax_verify_with_uniforms(front, core, num_uniforms):
    def verify_with_uniforms(uniforms, p, q, drafts) -> VerifyResult:
        p, q, drafts = front(p, q, drafts)
        u = _v.check_uniforms(uniforms, int(num_uniforms(int(drafts.shape[0])))).astype(p.dtype)
        return core(u, p, q, drafts)

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


def _register_scheme(s: DraftScheme, overwrite: bool) -> DraftScheme:
    if not isinstance(s, DraftScheme):
        raise TypeError(f"expected a spectheory.DraftScheme, got {type(s).__name__}")
    old = _SCHEMES.get(s.name)
    if old is not None and old is not s and old != s and not overwrite:
        raise ValueError(f"a different draft scheme named {s.name!r} is already registered; "
                         "give the new scheme another name (a scheme's name is its identity)")
    _SCHEMES[s.name] = s
    return s


def register(new: Union[Rule, DraftScheme], *, overwrite: bool = False):
    """Add a rule (and its draft scheme) or a draft scheme to the registry, so that audits,
    the conformance suite, ``spectheory compare``, draft trees, bounds and
    :func:`spectheory.generate` pick it up.

    Args:
      new: a :class:`Rule` or a :class:`DraftScheme`. A rule's scheme is registered with it
        when its name is new.
      overwrite: replace an existing entry of the same name instead of raising.

    Returns:
      ``new``.

    Raises:
      TypeError: if ``new`` is neither.
      ValueError: if the name is taken (by another rule, or by a different scheme) and
        ``overwrite`` is false.
    """
    if isinstance(new, DraftScheme):
        return _register_scheme(new, overwrite)
    if not isinstance(new, Rule):
        raise TypeError(f"register expects a spectheory.Rule or DraftScheme, got {type(new).__name__}")
    if new.name in _REGISTRY and not overwrite:
        raise ValueError(f"a rule named {new.name!r} is already registered")
    _register_scheme(new.drafts, overwrite)
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
        raise ValueError(f"unknown rule {name!r}; registered rules: {known}") from None


def rules() -> list[str]:
    """Names of all registered rules, in registration order."""
    return list(_REGISTRY)
