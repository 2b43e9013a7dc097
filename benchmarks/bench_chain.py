"""Chain verification throughput: spectheory vs a NumPy implementation, HF transformers'
``_speculative_sampling`` (batch-1 loop) and vLLM's rejection sampler when installed.

Run: ``python benchmarks/bench_chain.py [--batch 64 --gamma 5 --vocab 32000]``.
Every number is measured in the same process; floors are printed beside them:
from logits, the log-normalisers of all rows (work no exact rule can skip); from
probabilities, one read of the inputs.

vLLM (optional: ``pip install -e '.[vllm]'`` in a separate environment with a CUDA build of
torch): the script times whichever of vLLM's rejection samplers can run, on the same p, q and
drafts:

* V1 ``vllm.v1.sample.rejection_sampler.rejection_sample`` (vllm >= 0.8.1; Triton kernels,
  so only when ``torch.cuda.is_available()``); its target argument is ``target_probs`` up to
  0.15.x and ``target_logits`` from 0.16.0, read from the signature;
* V0 ``vllm.model_executor.layers.rejection_sampler.RejectionSampler`` (pure torch,
  vllm 0.6.0 to 0.9.2; removed in 0.10.0), on CUDA when available, else on the CPU (its
  ``_multinomial`` is ``torch.compile``d: the first call compiles, outside the timing).

The vLLM rows are timed against a torch floor on the same device (one read of the float
inputs handed to vLLM). Bonus tokens are inputs of both vLLM APIs: they are drawn once from
the last target row outside the timed call.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, table, timeit  # noqa: E402

from spectheory.verify import chain_from_logits_with_uniforms, chain_with_uniforms  # noqa: E402


def numpy_chain(u, p, q, d):
    """Token verification of a batch in plain vectorised NumPy (from probabilities)."""
    B, g1, V = p.shape
    g = g1 - 1
    b = np.arange(B)[:, None]
    i = np.arange(g)[None, :]
    ok = u[:, :g] * q[b, i, d] < p[b, i, d]
    k = np.cumprod(ok, axis=1).sum(axis=1)
    qp = np.concatenate([q, np.zeros((B, 1, V), q.dtype)], axis=1)
    w = np.maximum(p[np.arange(B), k] - qp[np.arange(B), k], 0)
    s = w.sum(-1, keepdims=True)
    w = np.where(s > 0, w, p[np.arange(B), k])
    c = np.cumsum(w, axis=-1)
    y = np.minimum((c <= u[:, g:] * c[:, -1:]).sum(-1), V - 1)
    return k, y


def hf_loop(tl_t, dl_t, d_t):
    """HF transformers' `_speculative_sampling`, one sequence at a time (it is batch-1 only)."""
    import torch
    from transformers.generation.utils import _speculative_sampling

    out = []
    g = dl_t.shape[1]
    for b in range(tl_t.shape[0]):
        cand = torch.cat([torch.zeros(1, 1, dtype=torch.long), d_t[b:b + 1]], dim=1)
        out.append(_speculative_sampling(cand, dl_t[b:b + 1], g, tl_t[b:b + 1], False))
    return out


# --- vLLM ------------------------------------------------------------------------------------

V1_MODULE = "vllm.v1.sample.rejection_sampler"
V0_MODULE = "vllm.model_executor.layers.rejection_sampler"
VLLM_INSTALL = ("pip install -e '.[vllm]' in a separate environment with a CUDA build of torch; "
                "see BENCHMARKS.md, 'vLLM rejection sampler'")


def _has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (its parents are imported)."""
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _torch(x, dtype, device):
    import torch

    return torch.as_tensor(np.ascontiguousarray(np.asarray(x)), device=device).to(dtype).contiguous()


def vllm_v0_inputs(p, q, d, bonus, device="cpu", target_param="target_with_bonus_probs"):
    """Our ``(p, q, drafts)`` as keyword arguments of vLLM V0 ``RejectionSampler.forward``.

    p: float[B, g+1, V] target laws (the last row is the bonus law); q: float[B, g, V] draft
    laws; d: int[B, g] drafts; bonus: int[B] bonus tokens drawn from ``p[:, g]``.

    Returns ``target_with_bonus_probs`` float32[B, g+1, V] (``target_probs`` float32[B, g, V]
    for vllm <= 0.5, which took no bonus row), ``bonus_token_ids`` int64[B, 1],
    ``draft_probs`` float32[B, g, V] and ``draft_token_ids`` int64[B, g].
    """
    import torch

    g = np.shape(q)[1]
    target = p if target_param == "target_with_bonus_probs" else np.asarray(p)[:, :g]
    return {
        target_param: _torch(target, torch.float32, device),
        "bonus_token_ids": _torch(np.asarray(bonus).reshape(-1, 1), torch.int64, device),
        "draft_probs": _torch(q, torch.float32, device),
        "draft_token_ids": _torch(d, torch.int64, device),
    }


def vllm_v1_sampling_metadata(cls, batch: int, device):
    """A V1 ``SamplingMetadata`` for all-random sampling at temperature 1, no seeds.

    ``rejection_sample`` reads only ``temperature``, ``all_greedy``, ``all_random`` and
    ``generators``; the other required fields get neutral values (``None`` for the logits
    processors, which it never touches), so this works across the field lists of 0.8 to 0.33.
    """
    import torch

    known = dict(
        temperature=torch.ones(batch, dtype=torch.float32, device=device), all_greedy=False,
        all_random=True, top_p=None, top_k=None, generators={}, max_num_logprobs=None,
        no_penalties=True, prompt_token_ids=None, frequency_penalties=torch.tensor([], device=device),
        presence_penalties=torch.tensor([], device=device),
        repetition_penalties=torch.tensor([], device=device),
        output_token_ids=[[] for _ in range(batch)], allowed_token_ids_mask=None,
        bad_words_token_ids={}, logitsprocs=None)
    if not dataclasses.is_dataclass(cls):
        return cls(**known)
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in known:
            kw[f.name] = known[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kw[f.name] = None
    return cls(**kw)


def vllm_v1_inputs(tl, p, q, d, bonus, metadata_cls, device="cuda", target_param="target_logits"):
    """Our ``(p, q, drafts)`` as positional arguments of vLLM V1 ``rejection_sample``.

    V1 flattens the batch into ``N = B * g`` draft positions:
    ``(draft_token_ids int32[N], num_draft_tokens list[int] (g per row), max_spec_len = g,
    cu_num_draft_tokens int32[B] (g, 2g, ..), draft_probs float32[N, V], target float32[N, V],
    bonus_token_ids int64[B, 1], sampling_metadata)``. The target is ``tl[:, :g]`` (logits,
    softmaxed inside vLLM) when the parameter is ``target_logits`` (vllm >= 0.16) and
    ``p[:, :g]`` when it is ``target_probs`` (0.8.1 to 0.15.x).
    """
    import torch

    B, g, V = np.shape(q)
    target = tl if target_param == "target_logits" else p
    target = np.asarray(target)[:, :g].reshape(B * g, V)
    return (
        _torch(np.asarray(d).reshape(B * g), torch.int32, device),
        [int(g)] * B,
        int(g),
        _torch(np.arange(1, B + 1) * g, torch.int32, device),
        _torch(np.asarray(q).reshape(B * g, V), torch.float32, device),
        _torch(target, torch.float32, device),
        _torch(np.asarray(bonus).reshape(B, 1), torch.int64, device),
        vllm_v1_sampling_metadata(metadata_cls, B, device),
    )


def num_accepted_from_vllm(out) -> np.ndarray:
    """Accepted drafts per row from a vLLM output int[B, g+1] (-1 after the emitted tokens)."""
    out = np.asarray(out.cpu() if hasattr(out, "cpu") else out)
    return (out != -1).sum(axis=1) - 1


def vllm_callables():
    """The vLLM rejection samplers that can run here, as ``(label, build, device)`` entries.

    ``build(tl, p, q, d, bonus)`` returns a zero-argument function running one verification of
    the batch (synchronised on CUDA). Also returns notes on what was found and what was skipped.
    """
    notes = []
    try:
        import vllm
    except ImportError:
        return [], [f"vLLM comparison skipped (vllm not installed; {VLLM_INSTALL})."]
    import torch

    version = getattr(vllm, "__version__", "unknown version")
    cuda = torch.cuda.is_available()
    found = []

    def sync(fn, dev):
        if dev.startswith("cuda"):
            def run():
                out = fn()
                torch.cuda.synchronize()
                return out
            return run
        return fn

    if _has_module(V1_MODULE):
        if not cuda:
            notes.append(f"vLLM {version}: V1 rejection_sample found but skipped (Triton kernels, needs "
                         "CUDA; torch.cuda.is_available() is False).")
        else:
            try:
                from vllm.v1.sample.metadata import SamplingMetadata
                from vllm.v1.sample.rejection_sampler import rejection_sample
            except Exception as e:  # noqa: BLE001 - report whatever stops the import
                notes.append(f"vLLM {version}: V1 rejection sampler did not import ({type(e).__name__}: {e}).")
            else:
                params = list(inspect.signature(rejection_sample).parameters)
                tparam = params[5] if len(params) > 5 else "?"
                if tparam not in ("target_probs", "target_logits"):
                    notes.append(f"vLLM {version}: V1 rejection_sample has an unknown signature {params}; "
                                 "skipped.")
                else:
                    def build_v1(tl, p, q, d, bonus, _t=tparam):
                        args = vllm_v1_inputs(tl, p, q, d, bonus, SamplingMetadata, "cuda", _t)
                        return sync(lambda: rejection_sample(*args), "cuda"), args
                    what = "logits" if tparam == "target_logits" else "probabilities"
                    found.append((f"vLLM RejectionSampler (V1 rejection_sample, vllm {version}, cuda, {what})",
                                  build_v1, "cuda"))
    if _has_module(V0_MODULE):
        try:
            from vllm.model_executor.layers.rejection_sampler import RejectionSampler
        except Exception as e:  # noqa: BLE001
            notes.append(f"vLLM {version}: V0 RejectionSampler did not import ({type(e).__name__}: {e}).")
        else:
            fwd = list(inspect.signature(RejectionSampler.forward).parameters)
            tparam = fwd[1] if len(fwd) > 1 else "?"
            init = inspect.signature(RejectionSampler.__init__).parameters
            dev = "cuda" if cuda else "cpu"
            if tparam not in ("target_with_bonus_probs", "target_probs"):
                notes.append(f"vLLM {version}: V0 RejectionSampler.forward has an unknown signature {fwd}; "
                             "skipped.")
            else:
                kw = {k: False for k in ("use_flashinfer", "disable_bonus_tokens") if k in init}

                def build_v0(tl, p, q, d, bonus, _t=tparam, _kw=kw, _dev=dev):
                    rs = RejectionSampler(**_kw)
                    # Its acceptance counters must exist before forward: init_tensors (0.7.3 to
                    # 0.9.2) takes any device; the older init_gpu_tensors takes a CUDA rank (0.6.x
                    # also a device string).
                    if hasattr(rs, "init_tensors"):
                        rs.init_tensors(_dev, device_type=_dev)
                    else:
                        rs.init_gpu_tensors(0 if _dev == "cuda" else _dev)
                    kwargs = vllm_v0_inputs(p, q, d, bonus, _dev, _t)
                    return sync(lambda: rs(**kwargs), _dev), kwargs
                found.append((f"vLLM RejectionSampler (V0 torch, vllm {version}, {dev}, probabilities)",
                              build_v0, dev))
    if not found and not notes:
        notes.append(f"vLLM {version} is installed but has neither {V1_MODULE}.rejection_sample nor "
                     f"{V0_MODULE}.RejectionSampler; skipped.")
    return found, notes


def vllm_sampler(tl, p, q, d, *, repeat=7, t_probs=None):
    """Time vLLM's rejection sampler(s) on the benchmark's batch; returns (rows, notes)."""
    found, notes = vllm_callables()
    rows = []
    if not found:
        return rows, notes
    import torch

    pn, qn, dn = np.asarray(p), np.asarray(q), np.asarray(d)
    V = pn.shape[-1]
    rng = np.random.default_rng(0)
    last = pn[:, -1].astype(np.float64)
    bonus = np.array([rng.choice(V, p=r / r.sum()) for r in last])
    floors = {}
    for label, build, dev in found:
        try:
            fn, inputs = build(tl, pn, qn, dn, bonus)
            t = timeit(fn, repeat=repeat)
        except Exception as e:  # noqa: BLE001 - a failing optional comparison must not stop the table
            notes.append(f"{label} failed: {type(e).__name__}: {e}")
            continue
        tensors = [x for x in (inputs.values() if isinstance(inputs, dict) else inputs)
                   if isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim >= 2]
        fkey = (dev, sum(x.numel() for x in tensors))
        if fkey not in floors:
            def read(ts=tensors, dv=dev):
                s = [x.sum() for x in ts]
                if dv.startswith("cuda"):
                    torch.cuda.synchronize()
                return s
            floors[fkey] = timeit(read, repeat=repeat)
            rows.append([f"floor (torch, {dev}): one read of the float inputs given to vLLM",
                         f"{floors[fkey] * 1e3:.3f}", "1.00"])
        rows.append([label, f"{t * 1e3:.3f}", f"{t / floors[fkey]:.2f}"])
        if t_probs is not None and dev == "cpu" and jax.devices()[0].platform == "cpu":
            notes.append(f"{label} takes {t / t_probs:.1f}x the time of spectheory's chain from "
                         "probabilities (same CPU, same process).")
    notes.append("vLLM rows: bonus tokens drawn once outside the timed call (vLLM takes them as input).")
    return rows, notes


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args(argv)
    B, g, V = a.batch, a.gamma, a.vocab
    key = jax.random.key(0)
    tl = jax.random.normal(key, (B, g + 1, V), jnp.float32) * 3
    dl = tl[:, :g] + jax.random.normal(jax.random.key(1), (B, g, V), jnp.float32)
    d = jax.random.categorical(jax.random.key(2), dl).astype(jnp.int32)
    u = jax.random.uniform(jax.random.key(3), (B, g + 1), jnp.float32)
    p, q = jax.nn.softmax(tl, -1), jax.nn.softmax(dl, -1)

    st_logits = jax.jit(jax.vmap(lambda uu, x, y, z: chain_from_logits_with_uniforms(uu, x, y, z, 1.0)))
    st_probs = jax.jit(jax.vmap(chain_with_uniforms))
    lse_floor = jax.jit(lambda x, y: (jax.nn.logsumexp(x, -1), jax.nn.logsumexp(y, -1)))
    read_floor = jax.jit(lambda x, y: (jnp.sum(x), jnp.sum(y)))
    pn, qn, dn, un = map(np.asarray, (p, q, d, u))

    rows = []
    t_lse = timeit(lse_floor, tl, dl, repeat=a.repeat)
    t_read = timeit(read_floor, p, q, repeat=a.repeat)
    t_l = timeit(st_logits, u, tl, dl, d, repeat=a.repeat)
    t_p = timeit(st_probs, u, p, q, d, repeat=a.repeat)
    t_np = timeit(numpy_chain, un, pn, qn, dn, repeat=a.repeat)
    rows.append(["floor: logsumexp of all logit rows", f"{t_lse * 1e3:.3f}", "1.00"])
    rows.append(["spectheory chain_from_logits (jit+vmap)", f"{t_l * 1e3:.3f}", f"{t_l / t_lse:.2f}"])
    rows.append(["floor: one read of p and q", f"{t_read * 1e3:.3f}", "1.00"])
    rows.append(["spectheory chain (probabilities, jit+vmap)", f"{t_p * 1e3:.3f}", f"{t_p / t_read:.2f}"])
    rows.append(["NumPy, vectorised over the batch (probabilities)", f"{t_np * 1e3:.3f}", f"{t_np / t_read:.2f}"])
    notes = []
    try:
        import torch  # noqa: F401
        from transformers.generation.utils import _speculative_sampling  # noqa: F401

        tl_t, dl_t = torch.from_numpy(np.asarray(tl)), torch.from_numpy(np.asarray(dl))
        d_t = torch.from_numpy(np.asarray(d).astype(np.int64))
        torch.manual_seed(0)
        t_hf = timeit(hf_loop, tl_t, dl_t, d_t, repeat=max(3, a.repeat // 2))
        rows.append(["HF transformers _speculative_sampling, batch-1 loop (logits)", f"{t_hf * 1e3:.3f}",
                     f"{t_hf / t_lse:.2f}"])
        notes.append(f"spectheory from logits is {t_hf / t_l:.1f}x faster than the HF loop.")
    except ImportError as e:
        notes.append(f"HF transformers comparison skipped ({e.name} not installed; pip install -e '.[torch]').")
    v_rows, v_notes = vllm_sampler(tl, p, q, d, repeat=a.repeat, t_probs=t_p)
    rows += v_rows
    notes += v_notes
    print(f"\n## Chain verification, B={B}, gamma={g}, V={V} ({machine()})\n")
    print(table(rows, ["implementation", "ms / batch", "x floor"]))
    print()
    for n in notes:
        print("- " + n)


if __name__ == "__main__":
    main()
