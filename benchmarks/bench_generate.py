"""Speculative generation on the shipped byte-level GPT-2s: spectheory vs plain autoregressive
decoding and ``transformers``' assisted generation (``generate(..., assistant_model=draft)``).

Run: ``python benchmarks/bench_generate.py [--new 96 --gamma 4 --prompts 4 --repeat 2]``.
Batch 1 (assisted generation supports no other), the same prompts for every method, all
measured in one process. Target calls are counted by a forward hook on the target model (the
prefill call included for every method); wall time is the median over ``--repeat`` runs after
one warm-up (so compilation is excluded), summed over the prompts. The machine line gives the
load average (``os.getloadavg()``) at the start and at the end: on a shared machine, compare
runs only when it is low.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, table  # noqa: E402

PROMPTS = [
    "import os\nimport sys\n\n\ndef main(argv):\n    ",
    "class Parser:\n    def __init__(self, text):\n        self.",
    "    for line in lines:\n        if line.startswith(",
    "def __repr__(self):\n        return '%s(%r)' % (self.__class__.__name__, ",
    "        try:\n            return self._cache[key]\n        except KeyError:\n",
    "    @property\n    def name(self):\n        return self._",
]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--new", type=int, default=96, help="max_new_tokens")
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args(argv)

    import torch

    import spectheory
    from spectheory.models import EOS, HFCausalLM, encode_bytes, load_shipped_models, prompt_lookup
    from spectheory.verify import BLOCK, TOKEN

    load0 = os.getloadavg()

    torch.manual_seed(0)
    tm, dm = load_shipped_models()
    calls = {"n": 0}
    tm.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    prompts = [encode_bytes(s) for s in PROMPTS[: a.prompts]]

    def hf(assist, temperature):
        def run(p):
            kw = dict(max_new_tokens=a.new, pad_token_id=EOS, eos_token_id=None)
            kw.update(do_sample=False) if temperature == 0 else kw.update(do_sample=True, temperature=temperature, top_k=0)
            if assist:
                kw.update(assistant_model=dm, num_assistant_tokens=a.gamma,
                          num_assistant_tokens_schedule="constant")
            with torch.no_grad():
                out = tm.generate(torch.tensor([p], dtype=torch.long), attention_mask=torch.ones(1, len(p), dtype=torch.long), **kw)
            return out.shape[1] - len(p)
        return run

    def ours(draft, verifier, temperature, branching=None):
        target = HFCausalLM(tm)
        d = HFCausalLM(dm) if draft == "model" else prompt_lookup
        key = [jax.random.key(0)]

        def run(p):
            key[0], k = jax.random.split(key[0])
            out = spectheory.generate(k, target, d, [p], verifier=verifier, gamma=a.gamma, max_new_tokens=a.new,
                                      temperature=temperature, branching=branching)
            return int(out.lengths[0])
        return run

    def plain_ours(temperature):
        """Autoregressive decoding through the same CausalLM adapter (one target call per token)."""
        target = HFCausalLM(tm)
        key = [jax.random.key(1)]

        def run(p):
            cache = target.init_cache(1, len(p) + a.new + 1)
            logits, cache = target.logits(np.asarray([p]), cache)
            row = logits[:, -1]
            for _ in range(a.new):
                key[0], k = jax.random.split(key[0])
                w = spectheory.verify.warp_logits(row, temperature)
                tok = np.asarray(jax.random.categorical(k, w, axis=-1))[:, None]
                row, cache = target.logits(tok, cache)
                row = row[:, -1]
            return a.new
        return run

    tree = (2,) + (1,) * (a.gamma - 1)
    methods = []
    for t in (0.0, 1.0):
        methods += [
            (t, "HF generate (autoregressive)", hf(False, t)),
            (t, "spectheory autoregressive (HFCausalLM)", plain_ours(t)),
            (t, f"HF assisted generation (gamma={a.gamma}, constant)", hf(True, t)),
            (t, f"spectheory.generate token (gamma={a.gamma})", ours("model", TOKEN, t)),
            (t, f"spectheory.generate block (gamma={a.gamma})", ours("model", BLOCK, t)),
            (t, f"spectheory.generate prompt lookup (gamma={a.gamma})", ours("lookup", TOKEN, t)),
            (t, f"spectheory.generate specinfer tree (branching {tree})", ours("model", "specinfer", t, tree)),
        ]

    rows = []
    base = {}
    for t, name, run in methods:
        for p in prompts:  # warm-up (compilation, caches)
            run(p.tolist())
        times, toks, tcalls = [], 0, 0
        for rep in range(a.repeat):
            t0 = time.perf_counter()
            c0 = calls["n"]
            n = sum(run(p.tolist()) for p in prompts)
            times.append(time.perf_counter() - t0)
            if rep == 0:
                toks, tcalls = n, calls["n"] - c0
        wall = float(np.median(times))
        if name.startswith("HF generate"):
            base[t] = wall
        rows.append([f"{t:g}", name, toks, tcalls, f"{toks / tcalls:.2f}", f"{wall:.2f}",
                     f"{base[t] / wall:.2f}"])
    print(f"\n## Speculative generation, shipped models, batch 1, {len(prompts)} prompts x {a.new} "
          f"new tokens ({machine()}, torch {torch.__version__}; load average "
          f"{' '.join(f'{x:.2f}' for x in load0)} at the start, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end)\n")
    print(table(rows, ["T", "method", "tokens", "target calls", "tokens / target call", "wall s",
                       "speed-up vs HF autoregressive"]))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
