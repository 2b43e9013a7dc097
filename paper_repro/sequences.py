"""Token vs block verification: expected number of accepted draft tokens per target call.

Reproduces the qualitative claim of Sun et al., Block Verification Accelerates Speculative
Decoding (ICLR 2025, arXiv 2403.10444): block verification is lossless, never accepts fewer
tokens than token-by-token verification, and the gap grows with the draft length gamma.

Three settings, each printed as a table of E[accepted] per method:

1. the paper's motivating example (context-free M_b = (1/3, 2/3), M_s = (2/3, 1/3)),
   exact by enumeration, gamma = 2..8;
2. random toy TableLMs (Dirichlet laws, draft = mixture of target and noise), exact by
   enumeration (``spectheory.audit.exact_chain``), averaged over seeds, gamma = 2..8 (V = 2)
   and gamma = 2..5 (V = 3);
3. synthetic chains over a larger vocabulary (V = 64, Zipf-like target, perturbed draft),
   Monte Carlo with the jitted, vmapped samplers (``chain`` and ``block`` on the same
   uniforms), gamma = 2..8, with standard errors.

Run:  .venv/bin/python paper_repro/sequences.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import spectheory  # noqa: E402
from spectheory.audit import exact_chain, exact_tree  # noqa: E402
from spectheory.models import TableLM  # noqa: E402
from spectheory.trees import beam_tree, draft_tree, tree_verify  # noqa: E402
from spectheory.verify import BLOCK, TOKEN, block_with_uniforms, chain_with_uniforms  # noqa: E402


def motivating_example(gammas=range(2, 9)):
    target = TableLM.context_free([1 / 3, 2 / 3])
    draft = TableLM.context_free([2 / 3, 1 / 3])
    print("1. Motivating example (Sun et al. 2025, Sec. 1), exact")
    print(f"{'gamma':>5} {'token':>10} {'block':>10} {'gain':>8} {'max_err(block)':>15}")
    for g in gammas:
        t = exact_chain(target, draft, g, verifier=TOKEN)
        b = exact_chain(target, draft, g, verifier=BLOCK)
        print(f"{g:>5} {t.expected_accepted:>10.6f} {b.expected_accepted:>10.6f} "
              f"{b.expected_accepted / t.expected_accepted - 1:>7.2%} {b.max_error:>15.2e}")
    print()


def random_toy(V, gammas, seeds=range(5), mix=0.5):
    print(f"2. Random toy TableLMs, V = {V}, draft = {1 - mix:.1f} target + {mix:.1f} noise, "
          f"exact, mean over {len(seeds)} seeds")
    print(f"{'gamma':>5} {'token':>10} {'block':>10} {'gain':>8} {'max_err':>10}")
    for g in gammas:
        tok, blk, err = [], [], 0.0
        for s in seeds:
            target = TableLM.random(V, g + 1, seed=s)
            noise = TableLM.random(V, g, seed=1000 + s)
            draft = target.mix(noise, mix)
            t = exact_chain(target, draft, g, verifier=TOKEN)
            b = exact_chain(target, draft, g, verifier=BLOCK)
            tok.append(t.expected_accepted)
            blk.append(b.expected_accepted)
            err = max(err, t.max_error, b.max_error)
        T, B = np.mean(tok), np.mean(blk)
        print(f"{g:>5} {T:>10.6f} {B:>10.6f} {B / T - 1:>7.2%} {err:>10.2e}")
    print()


def synthetic_chains(V=64, gammas=range(2, 9), num=50_000, seed=0):
    """Position-dependent laws: p_i Zipf-like with a random permutation per position, q_i a
    tempered, noisy version of p_i. Drafts are sampled from q; both rules see the same
    uniforms. Monte Carlo (mean +- standard error)."""
    print(f"3. Synthetic chains, V = {V}, Monte Carlo with {num} chains per gamma (same noise for both)")
    print(f"{'gamma':>5} {'token':>16} {'block':>16} {'gain':>8}")
    rng = np.random.default_rng(seed)
    G = max(gammas)
    base = 1.0 / np.arange(1, V + 1) ** 1.1
    P = np.stack([rng.permutation(base) for _ in range(G + 1)])
    P /= P.sum(axis=1, keepdims=True)
    Q = P[:G] ** 0.7 * np.exp(0.5 * rng.normal(size=(G, V)))
    Q /= Q.sum(axis=1, keepdims=True)
    for g in gammas:
        key = jax.random.key(100 + g)
        kd, ku = jax.random.split(key)
        p, q = jnp.asarray(P[:g + 1]), jnp.asarray(Q[:g])
        drafts = jax.random.categorical(kd, jnp.log(q)[None], shape=(num, g)).astype(jnp.int32)
        u = jax.random.uniform(ku, (num, g + 1), jnp.float64)
        run_t = jax.jit(jax.vmap(lambda uu, d: chain_with_uniforms(uu, p, q, d).num_accepted))
        run_b = jax.jit(jax.vmap(lambda uu, d: block_with_uniforms(uu, p, q, d).num_accepted))
        kt = np.asarray(run_t(u, drafts), dtype=float)
        kb = np.asarray(run_b(u, drafts), dtype=float)
        se = lambda x: x.std(ddof=1) / np.sqrt(x.size)
        print(f"{g:>5} {kt.mean():>9.4f} +- {se(kt):.4f} {kb.mean():>9.4f} +- {se(kb):.4f} "
              f"{kb.mean() / kt.mean() - 1:>7.2%}")
    print()


# --- 4/5. Draft trees at equal numbers of nodes ---------------------------------------------

# (label, tree, rule): the children of every node are drawn by the rule's own draft scheme
# (``rule.drafts``): a fixed tree (``draft_tree``) or the stochastic-beam-search tree (RSD-S).
# The beam tree of width W and depth D has W nodes per level, like the fixed trees with
# branching (W, 1, ..., 1), so both have N = W * D nodes.
TREE_METHODS = [
    ("RSD-C", "fixed", "rsd"),
    ("RSD-S", "beam", "rsd"),
    ("SpecInfer", "fixed", "specinfer"),
    ("SpecTr", "fixed", "spectr"),
    ("greedy", "fixed", "greedy"),
]
TREE_SHAPES = [(2, 2), (3, 2)]  # (W, D): N = W * D nodes (exact beam enumeration grows fast with D)
CHAIN_METHODS = {"token": TOKEN, "block": BLOCK}


def _tree_kwargs(tree, W, D):
    return dict(beam_width=W, depth=D) if tree == "beam" else dict(branching=(W,) + (1,) * (D - 1))


def random_toy_trees(V=3, shapes=TREE_SHAPES, seeds=range(3), mix=0.5):
    """Exact (``exact_tree`` / ``exact_chain``): E[accepted] per target call, mean over seeds;
    the chain gets the same node budget, gamma = N = W * D."""
    print(f"4. Draft trees vs chains at equal numbers of nodes N, random toy TableLMs, V = {V}, "
          f"draft = {1 - mix:.1f} target + {mix:.1f} noise, exact, mean over {len(seeds)} seeds")
    print("   (trees: width W per level, depth D, N = W D; chain: gamma = N)")
    print()
    cols = [m[0] for m in TREE_METHODS] + [f"chain {c}" for c in CHAIN_METHODS]
    print("| W | D | N | " + " | ".join(cols) + " | max_err |")
    print("|" + "---:|" * (4 + len(cols)))
    for W, D in shapes:
        N = W * D
        vals = {c: [] for c in cols}
        err = 0.0
        for s in seeds:
            target = TableLM.random(V, N + 1, seed=s)
            draft = target.mix(TableLM.random(V, N, seed=1000 + s), mix)
            for label, tree, rule in TREE_METHODS:
                a = exact_tree(target, draft, rule, **_tree_kwargs(tree, W, D))
                vals[label].append(a.expected_accepted)
                err = max(err, a.max_error)
            for c, verifier in CHAIN_METHODS.items():
                a = exact_chain(target, draft, N, verifier=verifier)
                vals[f"chain {c}"].append(a.expected_accepted)
                err = max(err, a.max_error)
        print(f"| {W} | {D} | {N} | " + " | ".join(f"{np.mean(vals[c]):.4f}" for c in cols) + f" | {err:.1e} |")
    print()


def _ctx_laws(V, D, rng, temperature=0.7, noise=0.5):
    """Target/draft laws depending on (position, last token): P[t, last] (row last = 0 at the
    root), Zipf-like target with a random permutation per context, tempered noisy draft."""
    base = 1.0 / np.arange(1, V + 1) ** 1.1
    P = np.stack([[rng.permutation(base) for _ in range(V)] for _ in range(D + 1)])
    P /= P.sum(-1, keepdims=True)
    Q = P ** temperature * np.exp(noise * rng.normal(size=P.shape))
    Q /= Q.sum(-1, keepdims=True)
    return P, Q


def synthetic_trees(V=32, shapes=((2, 2), (4, 2)), num=20_000, seed=0):
    """Monte Carlo with the jitted, vmapped tree samplers (``draft_tree``, ``beam_tree``) and
    ``tree_verify`` (and ``chain`` / ``block`` on chains of gamma = N drawn from the same
    laws): mean +- standard error."""
    print(f"5. Draft trees vs chains at equal N, synthetic context-dependent laws (position, last token), "
          f"V = {V}, Monte Carlo with {num} calls per cell (mean +- s.e.)")
    print()
    cols = [m[0] for m in TREE_METHODS] + [f"chain {c}" for c in CHAIN_METHODS]
    print("| W | D | N | " + " | ".join(cols) + " |")
    print("|" + "---:|" * (3 + len(cols)))
    rng = np.random.default_rng(seed)
    Dmax = max(max(W * D for W, D in shapes), max(D for _, D in shapes))
    P, Q = (jnp.asarray(a) for a in _ctx_laws(V, Dmax, rng))

    def laws_at(L, prefixes):  # prefixes int32[M, t] -> L[t, last]
        t = prefixes.shape[1]
        last = prefixes[:, -1] if t > 0 else jnp.zeros(prefixes.shape[0], jnp.int32)
        return L[t][last]

    log_q_fn = lambda prefixes: jnp.log(laws_at(Q, prefixes))
    se = lambda x: x.std(ddof=1) / np.sqrt(x.size)
    for si, (W, D) in enumerate(shapes):
        N = W * D
        cells = []
        for mi, (label, kind, rule) in enumerate(TREE_METHODS):
            def one(key, kind=kind, rule=rule):
                kb, kv = jax.random.split(key)
                if kind == "beam":
                    tree, q = beam_tree(kb, log_q_fn, W, D, V)
                else:
                    scheme = spectheory.rule(rule).drafts  # the children law the rule assumes
                    tree, q = draft_tree(kb, scheme, log_q_fn, (W,) + (1,) * (D - 1), V)
                # target law at every row: (depth, token of the node), root = (0, 0)
                rows = jnp.concatenate([P[0, 0][None], P[tree.depth, tree.token]], axis=0)
                return tree_verify(kv, tree, rows, q, rule).num_accepted

            keys = jax.random.split(jax.random.key(1000 * si + mi), num)
            k = np.asarray(jax.jit(jax.vmap(one))(keys), dtype=float)
            cells.append(f"{k.mean():.3f} ± {se(k):.3f}")
        # chains of length N: draft tokens drawn sequentially from Q[t, last]
        kd, ku = jax.random.split(jax.random.key(1000 * si + 99))

        def draw(key):
            toks, last = [], jnp.zeros((), jnp.int32)
            for t, kk in enumerate(jax.random.split(key, N)):
                last = jax.random.categorical(kk, jnp.log(Q[t, last])).astype(jnp.int32)
                toks.append(last)
            d = jnp.stack(toks)
            prev = jnp.concatenate([jnp.zeros((1,), jnp.int32), d])
            return d, P[jnp.arange(N + 1), prev], Q[jnp.arange(N), prev[:N]]

        d, p, q = jax.jit(jax.vmap(draw))(jax.random.split(kd, num))
        u = jax.random.uniform(ku, (num, N + 1), jnp.float64)
        for fn in (chain_with_uniforms, block_with_uniforms):
            run = jax.jit(jax.vmap(lambda uu, pp, qq, dd, fn=fn: fn(uu, pp, qq, dd).num_accepted))
            k = np.asarray(run(u, p, q, d), dtype=float)
            cells.append(f"{k.mean():.3f} ± {se(k):.3f}")
        print(f"| {W} | {D} | {N} | " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    t0 = time.time()
    motivating_example()
    random_toy(2, range(2, 9))
    random_toy(3, range(2, 6))
    synthetic_chains()
    random_toy_trees()
    synthetic_trees()
    print(f"done in {time.time() - t0:.1f}s")
