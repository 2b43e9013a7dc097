"""Chain verification throughput: spectheory vs a NumPy implementation, HF transformers'
``_speculative_sampling`` (batch-1 loop) and vLLM's rejection sampler when installed.

Run: ``python benchmarks/bench_chain.py [--batch 64 --gamma 5 --vocab 32000]``.
Every number is measured in the same process; floors are printed beside them:
from logits, the log-normalisers of all rows (work no exact rule can skip); from
probabilities, one read of the inputs.
"""

from __future__ import annotations

import argparse
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
    try:
        import vllm  # noqa: F401

        notes.append("vLLM is installed but its sampler comparison is not wired in this script yet.")
    except ImportError:
        notes.append("vLLM comparison skipped (vllm not installed; it is an optional, GPU-oriented extra).")
    print(f"\n## Chain verification, B={B}, gamma={g}, V={V} ({machine()})\n")
    print(table(rows, ["implementation", "ms / batch", "x floor"]))
    print()
    for n in notes:
        print("- " + n)


if __name__ == "__main__":
    main()
