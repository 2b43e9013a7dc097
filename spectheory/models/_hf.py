"""A :class:`~spectheory.models.CausalLM` over any ``transformers`` causal LM (private).

torch and transformers are imported lazily, so ``spectheory.models`` imports without them.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory.models._causal_lm import (
    call_layout,
    check_batch_size,
    check_call,
    check_keep,
    check_lengths,
    check_max_len,
    check_parents,
    check_path,
)

__all__ = ["HFCausalLM", "HFCache", "torch_to_jax"]


def torch_to_jax(t) -> jax.Array:
    """A float32 ``jax.Array`` from a torch tensor: DLPack (zero-copy on CPU) where possible,
    else through NumPy (e.g. a CUDA tensor with a CPU-only jax).

    Args:
      t: a ``torch.Tensor`` of any shape and device; it is detached, floating dtypes are cast
        to float32, and it is made contiguous first.

    Returns:
      A ``jax.Array`` of the same shape: float32 for a floating tensor, else the tensor's
      dtype as jax holds it (``int64`` ids become ``int32`` unless jax's x64 mode is on).
      Through DLPack it may share memory with ``t``.

    Raises:
      TypeError: ``t`` is not a ``torch.Tensor``.
      ImportError: torch is not installed.
    """
    import torch

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    t = t.detach()
    if t.dtype != torch.float32 and t.is_floating_point():
        t = t.float()
    t = t.contiguous()
    try:
        return jax.dlpack.from_dlpack(t)
    except Exception:  # noqa: BLE001  (any DLPack refusal: device, dtype, layout)
        return jnp.asarray(t.cpu().numpy())


class HFCache:
    """The cache of :class:`HFCausalLM` (mutable; see :class:`CausalLM` on ownership).

    The KV cache is a ``transformers`` ``DynamicCache`` whose ``L`` physical slots are shared by
    all rows; ragged rows leave *holes*. The host-side bookkeeping says what every slot holds.
    Made by :meth:`HFCausalLM.init_cache`, which checks the arguments; the constructor itself
    checks nothing and starts empty (``L = 0``, every length 0, nothing pending).

    Args:
      kv: the (empty) ``transformers`` ``DynamicCache`` the model will fill.
      batch_size: number of rows ``B``.
      max_len: largest number of logical positions a row may reach.

    Attributes:
      kv: the ``DynamicCache`` (``[B, heads, L, head_dim]`` per layer).
      positions: logical position of the token in each physical slot, ``-1`` for an empty slot
        (padding, rolled back, or a discarded tree node).  # shape=(B, L), dtype=int64
      lengths: committed length of every row.  # shape=(B,), dtype=int64
      max_len: largest number of logical positions a row may reach.
      pending: ``(parents int[B, T], valid bool[B, T])`` of the last call when it was a
        tree-mode call (its nodes are the last ``T`` slots), else ``None``.
    """

    def __init__(self, kv, batch_size: int, max_len: int):
        self.kv = kv
        self.positions = np.zeros((batch_size, 0), dtype=np.int64)
        self.lengths = np.zeros((batch_size,), dtype=np.int64)
        self.max_len = max_len
        self.pending: Optional[tuple[np.ndarray, np.ndarray]] = None

    @property
    def physical_len(self) -> int:
        """Number of physical KV slots (committed tokens plus holes)."""
        return self.positions.shape[1]


class HFCausalLM:
    r"""Wrap a ``transformers`` causal LM (torch) as a :class:`CausalLM`.

    The model's own KV cache (``DynamicCache``) is reused across calls. Every call passes an
    explicit 4-D additive attention mask ``[B, 1, T, L + T]`` (0 where attended, the dtype's
    minimum elsewhere) and explicit ``position_ids``, computed from the cache bookkeeping
    (:class:`HFCache`), so that

    * ragged batches need no realignment: rolled-back and padding slots stay in the KV cache as
      masked holes, and the physical tail that no row uses is cropped (``DynamicCache.crop``);
      :meth:`compact` re-packs the rows when holes pile up;
    * a draft tree is scored in one pass: node ``i`` attends to the committed slots and its own
      ancestors and has position ``lengths + depth[i]``.

    Logits cross from torch to JAX through DLPack (zero-copy for contiguous CPU tensors), with a
    NumPy fallback (:func:`torch_to_jax`); they are returned as float32.

    Requirements on the wrapped model: it accepts ``input_ids``, a 4-D float ``attention_mask``
    used as-is, ``position_ids`` and a ``DynamicCache`` (``cache=`` in transformers >= 5,
    ``past_key_values=`` before), with the ``eager`` or ``sdpa`` attention implementation.
    Tested with transformers 5.24 on GPT-2 (learned positions) and Llama (rotary positions,
    grouped-query attention), both implementations. Sliding-window attention is not reproduced
    (the mask is full causal). The model is put in ``eval()`` mode.

    Args:
      model: a ``transformers`` causal LM (``PreTrainedModel`` with an LM head).
      max_len: maximum logical length of a row; default ``config.max_position_embeddings``.

    Example:
      >>> from spectheory.models import HFCausalLM, load_shipped_models  # doctest: +SKIP
      >>> target, _ = load_shipped_models()                               # doctest: +SKIP
      >>> lm = HFCausalLM(target)                                         # doctest: +SKIP
      >>> logits, cache = lm.logits([[104, 105]], lm.init_cache(1))       # doctest: +SKIP
      >>> logits.shape                                                    # doctest: +SKIP
      (1, 2, 257)
    """

    def __init__(self, model, max_len: Optional[int] = None):
        import torch

        if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
            raise TypeError(f"model: expected a transformers causal LM (a torch.nn.Module with a config), "
                            f"got {type(model).__name__}")
        self.model = model.eval()
        cfg = model.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        impl = getattr(cfg, "_attn_implementation", None)
        if impl not in (None, "eager", "sdpa"):
            raise ValueError(
                f"model: HFCausalLM needs a model whose attention takes a 4-D float mask "
                f"('eager' or 'sdpa'), got attn_implementation={impl!r}"
            )
        out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if out_emb is not None and hasattr(out_emb, "weight"):
            self._vocab_size = int(out_emb.weight.shape[0])
        else:
            self._vocab_size = int(text_cfg.vocab_size)
        self.max_len = check_max_len(max_len if max_len is not None else int(text_cfg.max_position_embeddings))
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    # -- cache ---------------------------------------------------------------------------------

    def init_cache(self, batch_size: int, max_len: Optional[int] = None) -> HFCache:
        from transformers import DynamicCache

        batch_size = check_batch_size(batch_size)
        max_len = self.max_len if max_len is None else check_max_len(max_len)
        if max_len > self.max_len:
            raise ValueError(f"max_len={max_len} exceeds the model's {self.max_len} positions")
        return HFCache(DynamicCache(), batch_size, max_len)

    @staticmethod
    def _cache(cache) -> HFCache:
        if not isinstance(cache, HFCache):
            raise TypeError(f"cache: expected an HFCache (from init_cache), got {type(cache).__name__}")
        return cache

    def lengths(self, cache: HFCache) -> jax.Array:
        return jnp.asarray(self._cache(cache).lengths, dtype=jnp.int32)

    def _crop(self, cache: HFCache) -> None:
        """Drop the physical tail of slots that are empty in every row."""
        used = np.flatnonzero((cache.positions >= 0).any(axis=0))
        new_len = int(used[-1]) + 1 if used.size else 0
        drop = cache.physical_len - new_len
        if drop > 0:
            if new_len == 0:
                from transformers import DynamicCache

                cache.kv = DynamicCache()
            else:
                cache.kv.crop(-drop)
            cache.positions = cache.positions[:, :new_len]

    def _discard_tentative(self, cache: HFCache) -> None:
        cache.positions = np.where(cache.positions >= cache.lengths[:, None], -1, cache.positions)
        cache.pending = None
        self._crop(cache)

    def rollback(self, cache: HFCache, lengths: ArrayLike) -> HFCache:
        cache = self._cache(cache)
        cache.lengths = check_lengths(lengths, cache.lengths)
        self._discard_tentative(cache)
        return cache

    def commit(self, cache: HFCache, keep: ArrayLike) -> HFCache:
        cache = self._cache(cache)
        if cache.pending is None:
            raise ValueError("cache: commit must directly follow a tree-mode logits call")
        parents, valid = cache.pending
        keep = check_keep(keep, valid.shape)
        k = check_path(keep, parents, valid)
        T = keep.shape[1]
        tail = cache.positions[:, -T:] if T else cache.positions[:, :0]
        cache.positions[:, cache.physical_len - T:] = np.where(keep, tail, -1)
        cache.lengths = cache.lengths + k
        cache.pending = None
        self._crop(cache)
        return cache

    def compact(self, cache: HFCache) -> HFCache:
        """Re-pack the KV cache without holes: row ``b``'s committed tokens become the last
        ``lengths[b]`` physical slots in position order (left padding), ``L = max(lengths)``.

        Logits of later calls are unchanged (up to float rounding of the attention sum order);
        costs one gather of every layer's keys and values. Discards uncommitted tree nodes.
        """
        import torch

        cache = self._cache(cache)
        self._discard_tentative(cache)
        B, L = cache.positions.shape
        new_L = int(cache.lengths.max()) if B else 0
        idx = np.zeros((B, new_L), dtype=np.int64)
        pos = np.full((B, new_L), -1, dtype=np.int64)
        for b in range(B):
            n = int(cache.lengths[b])
            slots = np.flatnonzero(cache.positions[b] >= 0)
            slots = slots[np.argsort(cache.positions[b, slots], kind="stable")]
            idx[b, new_L - n:] = slots
            pos[b, new_L - n:] = np.arange(n)
        layers = _kv_tensors(cache.kv)
        for get, put in layers:
            t = get()
            gather = torch.from_numpy(idx).to(t.device)[:, None, :, None]
            put(torch.gather(t, 2, gather.expand(t.shape[0], t.shape[1], new_L, t.shape[3])))
        cache.positions = pos
        if new_L == 0:
            from transformers import DynamicCache

            cache.kv = DynamicCache()
        return cache

    # -- scoring -------------------------------------------------------------------------------

    def logits(
        self,
        tokens: ArrayLike,
        cache: HFCache,
        *,
        valid: Optional[ArrayLike] = None,
        parents: Optional[ArrayLike] = None,
    ) -> tuple[jax.Array, HFCache]:
        import torch

        cache = self._cache(cache)
        tokens, valid = check_call(tokens, valid, self.vocab_size, cache.lengths.shape[0], host=True)
        B, T = tokens.shape
        if T == 0:
            raise ValueError("tokens: expected at least one column")
        if parents is not None:
            parents = check_parents(parents, T, B).astype(np.int64)
            parent_valid = np.take_along_axis(valid, np.maximum(parents, 0), 1)
            if np.any(valid & (parents >= 0) & ~parent_valid):
                raise ValueError("valid: a valid tree node has an invalid (padding) parent")
        self._discard_tentative(cache)
        pos, new_mask = call_layout(cache.lengths, valid, parents, np)
        if T and pos.max() >= cache.max_len:
            raise ValueError(f"tokens: a row would reach position {pos.max()} >= max_len={cache.max_len}")
        L = cache.physical_len
        old = (cache.positions >= 0)[:, None, :] & valid[:, :, None]
        mask = np.concatenate([np.broadcast_to(old, (B, T, L)), new_mask], axis=-1)

        dev = self.model.device
        dtype = self.model.dtype if self.model.dtype.is_floating_point else torch.float32
        m = torch.from_numpy(mask).to(dev)[:, None]
        attn = torch.zeros(m.shape, dtype=dtype, device=dev)
        attn.masked_fill_(~m, torch.finfo(dtype).min)
        ids = torch.from_numpy(np.where(valid, tokens, 0).astype(np.int64)).to(dev)
        pids = torch.from_numpy(np.maximum(pos, 0)).to(dev)
        with torch.no_grad():
            out = self.model(
                input_ids=ids,
                attention_mask=attn,
                position_ids=pids,
                use_cache=True,
                **{self._cache_kw: cache.kv},
            )
        if cache.kv.get_seq_length() != L + T:
            raise RuntimeError(
                f"the model did not append {T} slots to the DynamicCache (got "
                f"{cache.kv.get_seq_length()} != {L + T}); its cache layout is not supported"
            )
        cache.positions = np.concatenate([cache.positions, pos], axis=1)
        if parents is None:
            cache.lengths = cache.lengths + valid.sum(axis=1)
        else:
            cache.pending = (parents, valid)
        return torch_to_jax(out.logits), cache


def _kv_tensors(kv):
    """``(get, put)`` accessors for every key and value tensor of a ``DynamicCache``."""
    pairs = []
    if hasattr(kv, "layers"):  # transformers >= 4.56
        for layer in kv.layers:
            for name in ("keys", "values"):
                if getattr(layer, name, None) is not None:
                    pairs.append((lambda l=layer, n=name: getattr(l, n),
                                  lambda t, l=layer, n=name: setattr(l, n, t)))
    elif hasattr(kv, "key_cache"):  # older transformers
        for lst in (kv.key_cache, kv.value_cache):
            for i in range(len(lst)):
                pairs.append((lambda lst=lst, i=i: lst[i],
                              lambda t, lst=lst, i=i: lst.__setitem__(i, t)))
    else:
        raise NotImplementedError(f"cannot re-pack a {type(kv).__name__}")
    return pairs
