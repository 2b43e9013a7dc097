"""Stochastic beam search: sequences without replacement from an autoregressive model."""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory.sampling._traced import any_traced
from spectheory.models._table import TableLM, check_ids, check_table_lm


class BeamResult(NamedTuple):
    """Outcome of :func:`stochastic_beam_search`.

    The final beam is ordered by decreasing perturbed log-probability; slots beyond the number
    of sequences of positive probability are invalid (``valid`` false, ``-inf`` scores, tokens
    meaningless). The per-level arrays describe every beam the search kept, which is the draft
    tree of RSD-S.

    Attributes:
      sequences: the final beam.  # shape=(W, D), dtype=int32
      log_probs: :math:`\\phi(s) = \\log q(s)` of each final sequence.  # shape=(W,), dtype=float
      perturbed: :math:`G(s)`, the perturbed log-probabilities.  # shape=(W,), dtype=float
      valid: whether the slot holds a sequence.  # shape=(W,), dtype=bool
      level_tokens: token of beam slot ``w`` at level ``t`` (length ``t + 1``).
        # shape=(D, W), dtype=int32
      level_parents: slot of its parent in level ``t - 1`` (``-1`` at level 0: the root).
        # shape=(D, W), dtype=int32
      level_perturbed: :math:`G` of each kept prefix.  # shape=(D, W), dtype=float
      level_valid: whether the slot holds a prefix.  # shape=(D, W), dtype=bool
    """

    sequences: jax.Array
    log_probs: jax.Array
    perturbed: jax.Array
    valid: jax.Array
    level_tokens: jax.Array
    level_parents: jax.Array
    level_perturbed: jax.Array
    level_valid: jax.Array


def _log1mexp(x):
    """``log(1 - exp(x))`` for ``x <= 0``, stable on both ends (``-inf`` at ``x = 0``)."""
    return jnp.where(x > -0.6931471805599453, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def _check_width_depth(beam_width, depth):
    return _v.check_count(beam_width, "beam_width"), _v.check_count(depth, "depth")


def stochastic_beam_search_with_gumbels(gumbels, log_probs_fn: Callable, beam_width: int,
                                        depth: int) -> BeamResult:
    r"""Stochastic beam search with explicit Gumbel noise.

    Each kept prefix :math:`s` carries :math:`\phi(s) = \log q(s)` and a perturbed
    :math:`G(s)` (the root has :math:`\phi = G = 0`). At every level each kept prefix expands
    all its children :math:`c`: with :math:`\tilde G(c) = \phi(c) + g_c`,
    :math:`Z = \max_{c'} \tilde G(c')` over the siblings,

    .. math::
        G(c) = -\log\big(e^{-G(s)} - e^{-Z} + e^{-\tilde G(c)}\big)
             = -\operatorname{logaddexp}\big(-G(s),\ -\tilde G(c) + \log(1 - e^{\tilde G(c) - Z})\big),

    and the ``W`` children with the largest :math:`G` over the whole level are kept. The final
    beam, ordered by :math:`G`, is ``W`` sequences drawn without replacement from the sequence
    law :math:`q(s) = \prod_t q(s_t \mid s_{<t})` (the Plackett-Luce law over complete
    sequences): it is the Gumbel-top-``W`` of :math:`\log q(s)` over all :math:`V^D` sequences.

    Args:
      gumbels: float[D, W, V] i.i.d. standard Gumbel noise, one ``[W, V]`` slab per level.
      log_probs_fn: ``log_probs_fn(prefixes int32[W, t]) -> float[W, V]``, the next-token
        log-probabilities (normalised; ``-inf`` for zero probability) after each of ``W``
        prefixes of static length ``t = 0..D-1``; pure JAX to run under ``jit``.
      beam_width: static ``W``.
      depth: static ``D``.

    Returns:
      :class:`BeamResult`. Under ``jit``/``vmap`` non-finite noise makes every slot invalid
      with NaN scores, and a slot reached through NaN log-probabilities has ``valid`` false.

    Raises:
      ValueError: a bad ``beam_width``/``depth``, ``gumbels`` of the wrong shape, dtype or
        (eager) not finite, or ``log_probs_fn`` returning the wrong shape.
      TypeError: a ``log_probs_fn`` that is not callable.

    >>> import jax.numpy as jnp
    >>> fn = table_log_probs_fn(TableLM.context_free([0.5, 0.3, 0.2]), 2)
    >>> res = stochastic_beam_search_with_gumbels(jnp.zeros((2, 2, 3)), fn, 2, 2)
    >>> res.sequences.tolist(), res.valid.tolist()
    ([[0, 0], [1, 0]], [True, True])

    References:
      Kool, van Hoof, Welling. Stochastic Beams and Where to Find Them: The Gumbel-Top-k Trick
      for Sampling Sequences Without Replacement, ICML 2019 (arXiv 1903.06059), Algorithm 1
      and Appendix B (numerically stable form).
    """
    W, D = _check_width_depth(beam_width, depth)
    _v.check_callable(log_probs_fn, "log_probs_fn")
    gumbels = jnp.asarray(gumbels) if _v.is_concrete(gumbels) else gumbels
    if gumbels.ndim != 3 or gumbels.shape[:2] != (D, W) or gumbels.shape[-1] < 1:
        raise ValueError(f"gumbels: expected shape (depth={D}, beam_width={W}, V), got {tuple(gumbels.shape)}")
    if not jnp.issubdtype(gumbels.dtype, jnp.floating):
        raise ValueError(f"gumbels: expected floating noise, got dtype {gumbels.dtype}")
    if _v.is_concrete(gumbels) and not np.all(np.isfinite(np.asarray(gumbels))):
        raise ValueError("gumbels: contains NaN or inf")
    V = gumbels.shape[-1]
    dtype = jnp.result_type(gumbels.dtype, jnp.float32)
    neg_inf = jnp.array(-jnp.inf, dtype)
    seqs = jnp.zeros((W, 0), jnp.int32)
    phi = jnp.where(jnp.arange(W) == 0, 0.0, neg_inf).astype(dtype)
    G = phi
    valid = jnp.arange(W) == 0
    lt, lp, lg, lv = [], [], [], []
    for t in range(D):
        logq = jnp.asarray(log_probs_fn(seqs)).astype(dtype)
        if logq.shape != (W, V):
            raise ValueError(f"log_probs_fn: expected shape ({W}, {V}) at level {t}, got {tuple(logq.shape)}")
        if _v.is_concrete(logq) and _v.is_concrete(valid):
            rows = np.asarray(logq)[np.asarray(valid)]
            if np.any(np.isnan(rows)) or np.any(rows == np.inf):
                raise ValueError(f"log_probs_fn: returned NaN or +inf log-probabilities at level {t}")
        ok = valid[:, None] & (logq > -jnp.inf)
        phi_c = jnp.where(ok, phi[:, None] + logq, neg_inf)
        g_tilde = jnp.where(ok, phi_c + gumbels[t].astype(dtype), neg_inf)
        Z = jnp.max(g_tilde, axis=-1, keepdims=True)
        safe_Z = jnp.where(valid[:, None], Z, 0)
        safe_gt = jnp.where(ok, g_tilde, 0)
        safe_G = jnp.where(valid, G, 0)[:, None]
        inner = -safe_gt + _log1mexp(jnp.minimum(safe_gt - safe_Z, 0))
        G_c = jnp.where(ok, -jnp.logaddexp(-safe_G, inner), neg_inf)
        top, flat = jax.lax.top_k(G_c.reshape(-1), W)
        parent = (flat // V).astype(jnp.int32)
        token = (flat % V).astype(jnp.int32)
        valid = top > -jnp.inf
        phi = jnp.where(valid, phi_c.reshape(-1)[flat], neg_inf)
        G = top
        seqs = jnp.concatenate([seqs[parent], token[:, None]], axis=1)
        lt.append(token)
        lp.append(jnp.where(valid, parent if t > 0 else -1, -1).astype(jnp.int32))
        lg.append(G)
        lv.append(valid)
    lg, lv = jnp.stack(lg), jnp.stack(lv)
    if any_traced(gumbels):  # eager calls reject non-finite noise; traced: flag every slot
        ok = jnp.all(jnp.abs(gumbels) < jnp.inf)
        phi, G, lg = (jnp.where(ok, a, jnp.nan) for a in (phi, G, lg))
        valid, lv = valid & ok, lv & ok
    return BeamResult(seqs, phi, G, valid, jnp.stack(lt), jnp.stack(lp), lg, lv)


def stochastic_beam_search(key, log_probs_fn: Callable, beam_width: int, depth: int, vocab_size: int) -> BeamResult:
    r"""Draw ``beam_width`` sequences of length ``depth`` without replacement from a model.

    Same as :func:`stochastic_beam_search_with_gumbels` with
    ``gumbels = jax.random.gumbel(key, (depth, beam_width, vocab_size))``. The final beam in
    order has the Plackett-Luce law over complete sequences:

    .. math:: P(s^{(1)}, \dots, s^{(W)}) = \prod_{j=1}^{W}
        \frac{q(s^{(j)})}{1 - \sum_{l<j} q(s^{(l)})}.

    Args:
      key: a ``jax.random`` key.
      log_probs_fn: ``prefixes int32[W, t] -> float[W, V]`` next-token log-probabilities.
      beam_width: static ``W``. depth: static ``D``. vocab_size: static ``V``.

    Returns:
      :class:`BeamResult`.

    Raises:
      ValueError: a bad ``key``, ``vocab_size``, or as
        :func:`stochastic_beam_search_with_gumbels`.

    >>> import jax, jax.numpy as jnp
    >>> lm = TableLM.context_free([0.5, 0.3, 0.2])
    >>> res = stochastic_beam_search(jax.random.key(0), table_log_probs_fn(lm, 2), 3, 2, 3)
    >>> res.sequences.shape, len({tuple(s) for s in res.sequences.tolist()})
    ((3, 2), 3)

    References:
      Kool, van Hoof, Welling, ICML 2019 (arXiv 1903.06059), Algorithm 1.
    """
    key = _v.check_key(key)
    W, D = _check_width_depth(beam_width, depth)
    V = _v.check_count(vocab_size, "vocab_size")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    g = jax.random.gumbel(key, (D, W, V), dtype)
    return stochastic_beam_search_with_gumbels(g, log_probs_fn, W, D)


def table_log_probs_fn(model: TableLM, depth: int, *, prefix=()) -> Callable:
    r"""A jit-friendly ``log_probs_fn`` for a :class:`~spectheory.models.TableLM`.

    Tabulates the next-token laws of every prefix of length ``< depth`` (after ``prefix``)
    into one dense array, float[(V^depth - 1)/(V - 1), V], indexed by the base-``V`` code of
    the prefix; the returned function gathers rows and takes logs (``-inf`` at zeros).
    Prefixes of probability zero are not looked up in the model (their rows are ``-inf``).

    .. math:: \mathrm{code}(s) = \sum_{l < t} V^l + \sum_{j=1}^{t} s_j V^{t-j}

    Args:
      model: the model. depth: the longest sequence that will be expanded. prefix: context.

    Returns:
      ``log_probs_fn(prefixes int32[W, t]) -> float[W, V]`` for ``t < depth``; it raises a
      ``ValueError`` for ids outside ``[0, V)`` on concrete prefixes and returns NaN rows for
      them under ``jit``/``vmap``.

    Raises:
      TypeError: ``model`` not a :class:`~spectheory.models.TableLM`.
      ValueError: ``depth`` not a positive int, a bad ``prefix``.

    >>> import jax.numpy as jnp
    >>> fn = table_log_probs_fn(TableLM(2, {(): [0.5, 0.5], (0,): [1.0, 0.0], (1,): [0.25, 0.75]}), 2)
    >>> jnp.exp(fn(jnp.array([[1]]))).tolist()
    [[0.25, 0.75]]

    References:
      Kool et al., ICML 2019 (arXiv 1903.06059) (the model interface the search expands).
    """
    V = check_table_lm(model, "model").vocab_size
    depth = _v.check_count(depth, "depth")
    prefix = check_ids(prefix, V, "prefix")
    rows, offsets = [], []
    for t in range(depth):
        offsets.append(len(rows))
        for s in itertools.product(range(V), repeat=t):
            # unreachable prefixes (probability zero) get an all-zero row (-inf logits); the
            # search never expands them
            reachable = model.sequence_prob(s, prefix=prefix) > 0
            rows.append(model.next_law(prefix + s) if reachable else np.zeros(V))
    arr = np.stack(rows)
    with np.errstate(divide="ignore"):
        table = np.where(arr > 0, np.log(np.where(arr > 0, arr, 1)), -np.inf)
    table = jnp.asarray(table)

    def log_probs_fn(prefixes):
        prefixes = _v.as_tokens(prefixes, "prefixes", V, ndim=None)
        if prefixes.ndim < 1:
            raise ValueError("prefixes: expected int[..., t]")
        t = prefixes.shape[-1]
        if t >= len(offsets):
            raise ValueError(f"prefixes: length {t} exceeds the tabulated depth {len(offsets)} (t < depth)")
        code = jnp.zeros(prefixes.shape[:-1], jnp.int32)
        for j in range(t):
            code = code * V + prefixes[..., j]
        out = table[offsets[t] + code]
        if any_traced(prefixes) and t:
            ok = jnp.all((prefixes >= 0) & (prefixes < V), -1)
            out = jnp.where(ok[..., None], out, jnp.nan)
        return out

    return log_probs_fn


def sequence_law(model: TableLM, depth: int, *, prefix=()) -> tuple[list, np.ndarray]:
    r"""All sequences of length ``depth`` of positive probability and their probabilities
    :math:`q(s) = \prod_t q(s_t \mid s_{<t})` (host, float64), by enumeration.

    Args:
      model: a :class:`~spectheory.models.TableLM`.
      depth: sequence length, an int ``>= 0``.
      prefix: context, int token ids in ``[0, V)``.

    Returns:
      ``(sequences list[tuple], probs float64[M])``.

    Raises:
      TypeError: ``model`` not a :class:`~spectheory.models.TableLM`.
      ValueError: a bad ``depth`` or ``prefix``.

    >>> seqs, probs = sequence_law(TableLM(2, {(): [0.5, 0.5], (0,): [1.0, 0.0], (1,): [0.25, 0.75]}), 2)
    >>> seqs, probs.tolist()
    ([(0, 0), (1, 0), (1, 1)], [0.5, 0.125, 0.375])

    References:
      Kool et al., ICML 2019 (arXiv 1903.06059), Sec. 3 (the sequence law the search samples).
    """
    V = check_table_lm(model, "model").vocab_size
    depth = _v.check_count(depth, "depth", minimum=0)
    prefix = check_ids(prefix, V, "prefix")
    out, probs = [], []

    def rec(seq, pr):
        if len(seq) == depth:
            out.append(tuple(seq))
            probs.append(pr)
            return
        law = model.next_law(tuple(prefix) + tuple(seq))
        for t in np.flatnonzero(law > 0):
            rec(seq + [int(t)], pr * law[t])

    rec([], 1.0)
    return out, np.asarray(probs, dtype=np.float64)
