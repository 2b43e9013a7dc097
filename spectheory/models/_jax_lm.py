"""A :class:`~spectheory.models.CausalLM` over any JAX function, and a small GPT in JAX (private).

The GPT is written with plain ``jax.numpy`` (no Flax needed at run time); its parameters are a
plain dict pytree laid out like a ``transformers`` GPT-2, so the shipped byte-level GPT-2 weights
load into it (:func:`gpt_from_pretrained`) and give the same logits as the torch model.
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory import _validation as _v
from spectheory.models._causal_lm import (
    call_layout,
    check_batch_size,
    check_call,
    check_keep,
    check_lengths,
    check_max_len,
    check_parents,
    forest_ok,
    tree_ancestors,
    tree_depths,
)

__all__ = [
    "JaxCausalLM",
    "JaxCache",
    "GPTConfig",
    "gpt_init",
    "gpt_logits",
    "gpt_from_pretrained",
]


class JaxCache(NamedTuple):
    """The cache of :class:`JaxCausalLM`: the tokens themselves (full recompute, no KV).

    Attributes:
      tokens: row ``b``'s committed tokens at ``[0, lengths[b])`` (index = position); after a
        tree-mode call with ``T`` nodes, node ``i`` is at ``lengths[b] + i`` until
        :meth:`JaxCausalLM.commit`.  # shape=(B, max_len), dtype=int32
      lengths: committed length of every row.  # shape=(B,), dtype=int32
    """

    tokens: jax.Array
    lengths: jax.Array


@jax.tree_util.register_pytree_node_class
class JaxCausalLM:
    r"""Wrap a JAX function ``apply_fn(params, tokens int[N, S]) -> logits float[N, S, V]`` as a
    :class:`CausalLM`.

    ``apply_fn`` must be causal (``logits[:, s]`` depends on ``tokens[:, :s + 1]`` only) and use
    positions ``0..S-1``; nothing else is assumed (no KV cache, no mask argument). So the cache
    (:class:`JaxCache`) stores tokens, not keys and values, and every call *recomputes*:

    * chain mode: the new valid tokens are written after each row's prefix and ``apply_fn``
      runs once on the ``[B, max_len]`` buffer (cost: one forward of length ``max_len``);
    * tree mode: every node gets its own sequence ``prefix + root-to-node path`` and ``apply_fn``
      runs on ``[B * T, max_len]`` (cost: ``T`` forwards per row).

    That is exact but ``O(max_len)`` per call: meant for small models, tests and demos (and as
    an oracle). Everything is pure JAX and traceable; the wrapper is a pytree whose leaves are
    ``params``, so ``jax.jit(lambda lm, toks, cache: lm.logits(toks, cache))`` works (the two
    scoring paths are also compiled internally, once per shape, so eager calls are not run op
    by op; ``apply_fn`` must therefore be hashable, e.g. a function or a ``partial``).

    Called eagerly, the arguments are checked as by :class:`HFCausalLM` (``ValueError`` naming
    the argument: token ids, ``valid``, ``parents``, ``lengths``, rows longer than ``max_len``),
    except that :meth:`commit` cannot check that ``keep`` is a root path (the cache does not
    keep the last call's ``parents``). Under ``jax.jit`` the values cannot be checked; instead
    invalid input gives NaN logits: every logit of a row with a valid token id outside
    ``[0, V)``, with ``parents`` that are not a topologically ordered forest, or left with a
    negative length by a :meth:`rollback` outside ``[0, lengths]`` (which sets the row's length
    to ``-1``), and the logits of chain positions at or beyond ``max_len`` and of tree nodes
    whose cache slot (row length + node index) is at or beyond ``max_len``.

    Args:
      apply_fn: ``(params, tokens int32[N, S]) -> logits float[N, S, V]``, causal.
      params: any pytree ``apply_fn`` takes.
      vocab_size: ``V``.
      max_len: default ``max_len`` of :meth:`init_cache` (e.g. the model's context size).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from spectheory.models import GPTConfig, JaxCausalLM, gpt_init, gpt_logits
      >>> cfg = GPTConfig(vocab_size=11, n_positions=16, n_embd=8, n_layer=1, n_head=2)
      >>> lm = JaxCausalLM(lambda p, t: gpt_logits(p, t, cfg), gpt_init(jax.random.key(0), cfg),
      ...                  vocab_size=11, max_len=16)
      >>> logits, cache = lm.logits(jnp.array([[1, 2, 3]]), lm.init_cache(1))
      >>> logits.shape, lm.lengths(cache).tolist()
      ((1, 3, 11), [3])
    """

    def __init__(self, apply_fn: Callable, params, vocab_size: int, max_len: Optional[int] = None):
        if not callable(apply_fn):
            raise TypeError(f"apply_fn: expected a callable (params, tokens) -> logits, got {type(apply_fn).__name__}")
        self.apply_fn = apply_fn
        self.params = params
        self._vocab_size = _v.check_count(vocab_size, "vocab_size", minimum=1)
        self.max_len = check_max_len(max_len)

    def tree_flatten(self):
        return (self.params,), (self.apply_fn, self._vocab_size, self.max_len)

    @classmethod
    def tree_unflatten(cls, aux, children):
        apply_fn, vocab_size, max_len = aux
        return cls(apply_fn, children[0], vocab_size, max_len)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def init_cache(self, batch_size: int, max_len: Optional[int] = None) -> JaxCache:
        batch_size = check_batch_size(batch_size)
        max_len = self.max_len if max_len is None else check_max_len(max_len)
        if max_len is None:
            raise ValueError("max_len: required (none was given to JaxCausalLM)")
        return JaxCache(
            jnp.zeros((batch_size, int(max_len)), jnp.int32), jnp.zeros((batch_size,), jnp.int32)
        )

    @staticmethod
    def _cache(cache) -> JaxCache:
        if not isinstance(cache, JaxCache):
            raise TypeError(f"cache: expected a JaxCache (from init_cache), got {type(cache).__name__}")
        return cache

    def lengths(self, cache: JaxCache) -> jax.Array:
        return self._cache(cache).lengths

    def rollback(self, cache: JaxCache, lengths: ArrayLike) -> JaxCache:
        cache = self._cache(cache)
        if _v.is_concrete(lengths) and _v.is_concrete(cache.lengths):
            return cache._replace(lengths=jnp.asarray(check_lengths(lengths, cache.lengths), jnp.int32))
        new = jnp.asarray(lengths) if _v.is_concrete(lengths) else lengths
        if tuple(new.shape) != tuple(cache.lengths.shape) or not jnp.issubdtype(new.dtype, jnp.integer):
            raise ValueError(f"lengths: expected int{list(cache.lengths.shape)}, got {new.dtype}{list(new.shape)}")
        ok = (new >= 0) & (new <= cache.lengths)
        return cache._replace(lengths=jnp.where(ok, new, -1).astype(jnp.int32))

    def commit(self, cache: JaxCache, keep: ArrayLike) -> JaxCache:
        cache = self._cache(cache)
        B = cache.tokens.shape[0]
        shape = tuple(np.shape(keep)) if _v.is_concrete(keep) else tuple(keep.shape)
        if len(shape) != 2 or shape[0] != B:
            raise ValueError(f"keep: expected bool[{B}, T], got shape {shape}")
        if _v.is_concrete(keep):
            keep = jnp.asarray(check_keep(keep, shape))
        return _commit(cache, keep.astype(bool))

    def logits(
        self,
        tokens: ArrayLike,
        cache: JaxCache,
        *,
        valid: Optional[ArrayLike] = None,
        parents: Optional[ArrayLike] = None,
    ) -> tuple[jax.Array, JaxCache]:
        cache = self._cache(cache)
        tokens, valid = check_call(tokens, valid, self.vocab_size, cache.tokens.shape[0], xp=jnp)
        B, T = tokens.shape
        L = cache.tokens.shape[1]
        concrete = all(_v.is_concrete(x) for x in (tokens, valid, cache.lengths))
        if parents is None:
            if concrete:
                longest = int(np.max(np.asarray(cache.lengths) + np.asarray(valid).sum(axis=1), initial=0))
                if longest > L:
                    raise ValueError(f"tokens: a row would reach length {longest} > max_len={L}")
            return _chain_logits(self, tokens, cache, valid)
        if _v.is_concrete(parents):
            parents = jnp.asarray(check_parents(parents, T, B), jnp.int32)
            if concrete:
                v, par = np.asarray(valid), np.asarray(parents)
                if np.any(v & (par >= 0) & ~np.take_along_axis(v, np.maximum(par, 0), 1)):
                    raise ValueError("valid: a valid tree node has an invalid (padding) parent")
                slot = np.asarray(cache.lengths)[:, None] + np.arange(T)
                if np.any(v & (slot >= L)):
                    raise ValueError(f"tokens: a valid tree node would be stored at slot {int(slot[v].max())} >= "
                                     f"max_len={L} (node i of a row of length n needs n + i < max_len)")
        else:
            if parents.shape not in ((T,), (B, T)) or not jnp.issubdtype(parents.dtype, jnp.integer):
                raise ValueError(f"parents: expected int[{T}] or int[{B}, {T}], got {parents.dtype}{list(parents.shape)}")
        return _tree_logits(self, tokens, cache, valid, jnp.broadcast_to(parents.astype(jnp.int32), (B, T)))


# The two scoring paths are compiled as a whole (one XLA program per shape) rather than run op by
# op; under an outer jit they simply inline.


@jax.jit
def _chain_logits(lm: JaxCausalLM, tokens, cache: JaxCache, valid):
    L = cache.tokens.shape[1]
    tokens_in = tokens
    tokens = jnp.where(valid, tokens, 0).astype(jnp.int32)
    pos, _ = call_layout(cache.lengths, valid, None, jnp)
    buf = _scatter_rows(cache.tokens, jnp.where(valid, pos, L), tokens)
    out = lm.apply_fn(lm.params, buf)  # [B, L, V]
    logits = jnp.take_along_axis(out, jnp.clip(pos, 0, L - 1)[:, :, None], axis=1)
    bad = _bad_rows(lm, tokens_in, valid, cache.lengths)[:, None] | (pos >= L)
    logits = jnp.where(bad[..., None], jnp.nan, logits)
    return logits, JaxCache(buf, cache.lengths + jnp.sum(valid, -1, dtype=jnp.int32))


def _bad_rows(lm: JaxCausalLM, tokens, valid, lengths):
    """Rows whose logits are flagged NaN: a valid id outside ``[0, V)`` or a negative length."""
    oor = jnp.any(valid & ((tokens < 0) | (tokens >= lm.vocab_size)), axis=-1)
    return oor | (lengths < 0)


@jax.jit
def _tree_logits(lm: JaxCausalLM, tokens, cache: JaxCache, valid, parents):
    B, T = tokens.shape
    L = cache.tokens.shape[1]
    lengths = cache.lengths
    bad = _bad_rows(lm, tokens, valid, lengths) | ~forest_ok(parents)
    tokens = jnp.where(valid, tokens, 0).astype(jnp.int32)
    anc = tree_ancestors(parents)  # [B, T(node), T(ancestor)]
    depth = tree_depths(parents)  # [B, T]
    # path[b, i, d]: the token at depth d on node i's root path
    at_depth = depth[:, None, :, None] == jnp.arange(T)  # [B, 1, T(j), T(d)]
    path = jnp.einsum("bijd,bj->bid", (anc[..., None] & at_depth).astype(jnp.int32), tokens)
    rel = jnp.arange(L) - lengths[:, None]  # [B, L]
    on_path = (rel[:, None, :] >= 0) & (rel[:, None, :] <= depth[:, :, None])  # [B, T, L]
    path_tok = jnp.take_along_axis(
        path, jnp.broadcast_to(jnp.clip(rel, 0, T - 1)[:, None, :], (B, T, L)), axis=2
    )
    seqs = jnp.where(on_path, path_tok, cache.tokens[:, None, :])
    out = lm.apply_fn(lm.params, seqs.reshape(B * T, L)).reshape(B, T, L, -1)
    idx = jnp.clip(lengths[:, None] + depth, 0, L - 1)
    logits = jnp.take_along_axis(out, idx[:, :, None, None], axis=2)[:, :, 0]
    bad = bad[:, None] | (valid & (lengths[:, None] + jnp.arange(T) >= L))
    logits = jnp.where(bad[..., None], jnp.nan, logits)
    slots = lengths[:, None] + jnp.arange(T, dtype=jnp.int32)
    return logits, JaxCache(_scatter_rows(cache.tokens, slots, tokens), lengths)


@jax.jit
def _commit(cache: JaxCache, keep):
    T = keep.shape[-1]
    slots = cache.lengths[:, None] + jnp.arange(T, dtype=jnp.int32)
    nodes = jnp.take_along_axis(cache.tokens, jnp.minimum(slots, cache.tokens.shape[1] - 1), 1)
    # a root path in topological order is in depth order: move the kept nodes to the front
    order = jnp.argsort(~keep, axis=-1, stable=True)
    tokens = _scatter_rows(cache.tokens, slots, jnp.take_along_axis(nodes, order, 1))
    return JaxCache(tokens, cache.lengths + jnp.sum(keep, axis=-1, dtype=jnp.int32))


def _scatter_rows(buf: jax.Array, cols: jax.Array, vals: jax.Array) -> jax.Array:
    """``buf[b, cols[b, t]] = vals[b, t]``; out-of-range columns are dropped."""
    rows = jnp.broadcast_to(jnp.arange(buf.shape[0])[:, None], cols.shape)
    return buf.at[rows, cols].set(vals.astype(buf.dtype), mode="drop")


# -- a small GPT (GPT-2 architecture) in plain jax.numpy ------------------------------------------


class GPTConfig(NamedTuple):
    """Shape of :func:`gpt_logits`'s model: a GPT-2 (pre-LayerNorm, learned positions,
    tanh-GELU MLP of width ``4 * n_embd``, LM head tied to the token embedding).

    The fields carry the names of ``transformers.GPT2Config``; :func:`gpt_init` and
    :func:`gpt_logits` check them (positive ints, ``n_embd`` divisible by ``n_head``).

    Attributes:
      vocab_size: number of token ids ``V`` (rows of ``wte``; last axis of the logits).
      n_positions: context length ``P``: the most positions a call may hold (rows of ``wpe``).
      n_embd: model width ``d``; a multiple of ``n_head``.
      n_layer: number of transformer blocks.
      n_head: number of attention heads (each of width ``n_embd // n_head``).
      layer_norm_epsilon: the ``eps`` added to the variance in every LayerNorm (a finite
        float > 0; default ``1e-5``, as in GPT-2).
    """

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    layer_norm_epsilon: float = 1e-5


def gpt_init(key: jax.Array, config: GPTConfig, dtype=jnp.float32) -> dict:
    """Random GPT-2-style parameters (normal(0, 0.02) weights, zero biases, unit LN gains).

    The pytree mirrors ``transformers``' GPT-2 names: ``wte [V, d]``, ``wpe [P, d]``,
    ``h`` (a list of blocks with ``ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj``;
    dense weights are ``[in, out]``) and ``ln_f``.

    Args:
      key: a ``jax.random`` key (``jax.random.key(seed)`` or a raw ``uint32[2]`` key).
      config: the :class:`GPTConfig` to build parameters for.
      dtype: dtype of every parameter array (default ``float32``).

    Returns:
      The parameter pytree (nested ``dict``/``list`` of ``dtype`` arrays) described above, as
      :func:`gpt_logits` takes it: ``wte [V, d]`` and ``wpe [P, d]`` (``P = n_positions``),
      per block ``c_attn`` ``[d, 3d]``, ``attn.c_proj`` ``[d, d]``, ``c_fc`` ``[d, 4d]``,
      ``mlp.c_proj`` ``[4d, d]`` (each ``{"weight", "bias"}``), LayerNorms ``{"weight",
      "bias"}`` of shape ``[d]``.

    Raises:
      ValueError: a bad ``key``, or a ``config`` field that is not a positive int (or a
        finite ``layer_norm_epsilon > 0``), or ``n_embd`` not divisible by ``n_head``.
      TypeError: ``config`` is not a :class:`GPTConfig`.
    """
    key = _v.check_key(key)
    config = _check_config(config)
    d, V, P = config.n_embd, config.vocab_size, config.n_positions
    keys = iter(jax.random.split(key, 2 + 4 * config.n_layer))

    def dense(n_in, n_out):
        w = 0.02 * jax.random.normal(next(keys), (n_in, n_out), dtype)
        return {"weight": w, "bias": jnp.zeros((n_out,), dtype)}

    def ln():
        return {"weight": jnp.ones((d,), dtype), "bias": jnp.zeros((d,), dtype)}

    return {
        "wte": 0.02 * jax.random.normal(next(keys), (V, d), dtype),
        "wpe": 0.01 * jax.random.normal(next(keys), (P, d), dtype),
        "h": [
            {
                "ln_1": ln(),
                "attn": {"c_attn": dense(d, 3 * d), "c_proj": dense(d, d)},
                "ln_2": ln(),
                "mlp": {"c_fc": dense(d, 4 * d), "c_proj": dense(4 * d, d)},
            }
            for _ in range(config.n_layer)
        ],
        "ln_f": ln(),
    }


def _check_config(config) -> GPTConfig:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config: expected a GPTConfig, got {type(config).__name__}")
    for f in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
        x = getattr(config, f)
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
            raise ValueError(f"config: {f} must be a positive int, got {x!r}")
    if config.n_embd % config.n_head:
        raise ValueError(f"config: n_embd={config.n_embd} is not divisible by n_head={config.n_head}")
    eps = config.layer_norm_epsilon
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"config: layer_norm_epsilon must be a finite float > 0, got {eps!r}")
    return config


def gpt_logits(params: dict, tokens: ArrayLike, config: GPTConfig) -> jax.Array:
    """Causal logits ``float[N, S, V]`` of the GPT for ``tokens int[N, S]`` (``S <= n_positions``),
    positions ``0..S-1``. Matches ``transformers.GPT2LMHeadModel`` with the same weights.

    Args:
      params: the parameter pytree of :func:`gpt_init` or :func:`gpt_from_pretrained`.
      tokens: token ids ``int[N, S]`` (any integer dtype; may be traced under ``jax.jit``).
      config: the :class:`GPTConfig` the parameters were built for.

    Returns:
      ``jax.Array`` of shape ``[N, S, vocab_size]`` in the parameters' dtype: the logits of the
      next token after each prefix ``tokens[n, :s+1]`` (no cache: every call starts at
      position 0). Rows with an out-of-range id are all NaN when ``tokens`` is traced.

    Raises:
      ValueError: ``tokens`` not ``int[N, S]`` with ``S <= n_positions``, or (concrete tokens)
        an id outside ``[0, vocab_size)``; ``config`` as in :func:`gpt_init`. Under
        ``jax.jit`` an out-of-range id gives NaN logits for its row.
    """
    config = _check_config(config)
    tokens = jnp.asarray(tokens) if _v.is_concrete(tokens) else tokens
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens: expected int[N, S], got {tokens.dtype}{list(tokens.shape)}")
    if tokens.shape[1] > config.n_positions:
        raise ValueError(f"tokens: S={tokens.shape[1]} exceeds n_positions={config.n_positions}")
    oor = (tokens < 0) | (tokens >= config.vocab_size)
    if _v.is_concrete(tokens) and bool(jnp.any(oor)):
        raise ValueError(f"tokens: token ids must lie in [0, {config.vocab_size})")
    logits = _gpt_logits(params, tokens, config)
    if _v.is_concrete(tokens):
        return logits
    return jnp.where(jnp.any(oor, axis=1)[:, None, None], jnp.nan, logits)


def _gpt_logits(params: dict, tokens, config: GPTConfig) -> jax.Array:
    N, S = tokens.shape
    H = config.n_head
    eps = config.layer_norm_epsilon

    def layer_norm(x, p):
        mu = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mu), -1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + eps) * p["weight"] + p["bias"]

    def dense(x, p):
        return x @ p["weight"] + p["bias"]

    x = params["wte"][tokens] + params["wpe"][:S]
    causal = jnp.tril(jnp.ones((S, S), bool))
    for blk in params["h"]:
        h = layer_norm(x, blk["ln_1"])
        q, k, v = jnp.split(dense(h, blk["attn"]["c_attn"]), 3, axis=-1)
        q, k, v = (t.reshape(N, S, H, -1).transpose(0, 2, 1, 3) for t in (q, k, v))
        att = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(q.shape[-1])
        att = jax.nn.softmax(jnp.where(causal, att, jnp.finfo(att.dtype).min), axis=-1)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(N, S, -1)
        x = x + dense(y, blk["attn"]["c_proj"])
        h = layer_norm(x, blk["ln_2"])
        h = jax.nn.gelu(dense(h, blk["mlp"]["c_fc"]), approximate=True)
        x = x + dense(h, blk["mlp"]["c_proj"])
    return layer_norm(x, params["ln_f"]) @ params["wte"].T


def gpt_from_pretrained(path) -> tuple[GPTConfig, dict]:
    """``(config, params)`` of a GPT-2 saved by ``save_pretrained`` (``config.json`` and
    ``model.safetensors``), read with ``safetensors.numpy`` (no torch needed).

    Args:
      path: a ``save_pretrained`` directory (``str`` or ``pathlib`` path), e.g.
        :func:`shipped_model_path` ``("target")``.

    Returns:
      A tuple ``(config, params)``: the :class:`GPTConfig` read from ``config.json`` and the
      parameter pytree of :func:`gpt_init`'s layout, its arrays as stored in the checkpoint
      (float32 for the shipped models), ready for :func:`gpt_logits`.

    Raises:
      ValueError: the checkpoint is not a plain GPT-2 this module reproduces (``model_type``
        not ``gpt2``, activation not ``gelu_new``, MLP width not ``4 * n_embd``, untied LM
        head, or ``scale_attn_by_inverse_layer_idx``).
      FileNotFoundError: ``config.json`` or ``model.safetensors`` is missing under ``path``.
      TypeError: ``path`` is not a ``str`` or a path.
    """
    from safetensors.numpy import load_file

    if not isinstance(path, (str, pathlib.PurePath)):
        raise TypeError(f"path: expected a directory path, got {type(path).__name__}")
    path = pathlib.Path(path)
    for f in ("config.json", "model.safetensors"):
        if not (path / f).is_file():
            raise FileNotFoundError(f"path: {path / f} not found (expected a save_pretrained directory)")
    c = json.loads((path / "config.json").read_text())
    if c.get("model_type") != "gpt2" or c.get("activation_function") != "gelu_new" or c.get(
        "n_inner"
    ) not in (None, 4 * c["n_embd"]) or not c.get("tie_word_embeddings", True) or c.get(
        "scale_attn_by_inverse_layer_idx"
    ):
        raise ValueError(f"path: {path} is not a plain tied GPT-2 with gelu_new")
    config = GPTConfig(c["vocab_size"], c["n_positions"], c["n_embd"], c["n_layer"], c["n_head"],
                       c.get("layer_norm_epsilon", 1e-5))
    tensors = load_file(path / "model.safetensors")
    sd = {k.removeprefix("transformer."): jnp.asarray(v) for k, v in tensors.items()}

    def wb(name):
        return {"weight": sd[f"{name}.weight"], "bias": sd[f"{name}.bias"]}

    ln = wb

    params = {
        "wte": sd["wte.weight"],
        "wpe": sd["wpe.weight"],
        "h": [
            {
                "ln_1": ln(f"h.{i}.ln_1"),
                "attn": {"c_attn": wb(f"h.{i}.attn.c_attn"), "c_proj": wb(f"h.{i}.attn.c_proj")},
                "ln_2": ln(f"h.{i}.ln_2"),
                "mlp": {"c_fc": wb(f"h.{i}.mlp.c_fc"), "c_proj": wb(f"h.{i}.mlp.c_proj")},
            }
            for i in range(config.n_layer)
        ],
        "ln_f": ln("ln_f"),
    }
    return config, params
