"""Command-line interface: ``spectheory compare | rules | audit`` (also ``python -m spectheory``).

Every command takes ``--plugin FILE`` (repeatable): a Python file imported first, e.g. one that
registers a new rule with :func:`spectheory.register`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np


def _load_vector(path: str, name: str) -> np.ndarray:
    """A 1-d float vector from a ``.npy`` or ``.json`` file; ``SystemExit`` naming the option,
    the file and what is wrong with it."""
    f = Path(path)
    if not f.is_file():
        raise SystemExit(f"error: --{name}: no such file {path}")
    try:
        if f.suffix == ".npy":
            arr = np.load(f, allow_pickle=False)
        elif f.suffix == ".json":
            data = json.loads(f.read_text())
            if not isinstance(data, list):
                raise ValueError(f"expected a JSON list of numbers, got a JSON {type(data).__name__}")
            if any(isinstance(x, bool) for x in data):
                raise SystemExit(f"error: --{name}: {path} must hold real numbers, got true/false")
            arr = np.asarray(data, dtype=np.float64)
        else:
            raise SystemExit(f"error: --{name}: expected a .npy or .json file, got {path}")
    except json.JSONDecodeError as e:
        raise SystemExit(f"error: --{name}: {path} is not valid JSON: {e}") from None
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: --{name}: cannot read a probability vector from {path}: {e}") from None
    if not np.issubdtype(np.asarray(arr).dtype, np.number) or np.issubdtype(np.asarray(arr).dtype, np.complexfloating):
        raise SystemExit(f"error: --{name}: {path} must hold real numbers, got dtype {np.asarray(arr).dtype}")
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 1:
        raise SystemExit(f"error: --{name}: {path}: expected a 1-d probability vector, got shape {arr.shape}")
    return arr


def _check_out(out: str) -> None:
    """Refuse an ``--out`` path the plot could not be written to, before any computation: its
    folder must exist and be writable, the path must not be a folder, and its suffix must be
    an image format matplotlib writes."""
    import os

    f = Path(out)
    folder = f.parent if str(f.parent) else Path(".")
    if f.is_dir():
        raise SystemExit(f"error: --out: {out} is a directory; give a file name such as compare.png")
    if not folder.is_dir():
        raise SystemExit(f"error: --out: the directory {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK) or (f.exists() and not os.access(f, os.W_OK)):
        raise SystemExit(f"error: --out: {out} is not writable")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if f.suffix.lstrip(".").lower() not in formats:
        raise SystemExit(f"error: --out: unsupported image format {f.suffix or '(none)'!r} in {out}; use one of "
                         f"{', '.join('.' + k for k in sorted(formats))}")


def _pairs(args):
    from spectheory._examples import examples

    if args.p or args.q:
        if not (args.p and args.q):
            raise SystemExit("error: give both --p and --q")
        p, q = _load_vector(args.p, "p"), _load_vector(args.q, "q")
        return {"custom": (p, q, f"p={args.p}, q={args.q}")}
    ex = examples()
    names = args.example or list(ex)
    unknown = [n for n in names if n not in ex]
    if unknown:
        raise SystemExit(f"error: unknown example(s) {unknown}; available: {', '.join(ex)}")
    return {n: ex[n] for n in names}


def _fmt(a) -> str:
    if a is None:
        return "—"
    s = f"{a.value:.4f}"
    return s + ("~" if a.method == "monte_carlo" else "")


def compare(args) -> int:
    """Print, for each pair, every rule's acceptance for n = 1..max_n; write a PNG plot."""
    import spectheory
    from spectheory import _validation as _v
    from spectheory.audit import acceptance

    if args.out:
        _check_out(args.out)
    try:
        # the Monte-Carlo size is checked before any computation (the audit refuses one too small to see anything)
        from spectheory.audit import _power

        _power.require_detectable(_power.mean_test(args.mc_samples, 1e-3).detectable, "--mc-samples",
                                  args.mc_samples, "the Monte-Carlo estimate")
        pairs = _pairs(args)
        for name, (p, q, _) in pairs.items():
            pn, qn = (f"--p ({args.p})", f"--q ({args.q})") if name == "custom" else (f"p ({name})", f"q ({name})")
            _v.as_probs(p, pn)
            _v.as_probs(q, qn)
            _v.same_vocab(p, q, pn, qn)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    names = [r.strip() for r in args.rules.split(",")] if args.rules is not None else spectheory.rules()
    if not all(names):
        raise SystemExit(f"error: --rules: expected comma-separated rule names, got {args.rules!r}")
    try:
        rule_objs = [spectheory.rule(r) for r in names]
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    ns = list(range(1, args.max_n + 1))
    results = {}
    bound_rows = _bounds_rows()
    for ex_name, (p, q, desc) in pairs.items():
        V = p.shape[0]
        support = int(np.sum(q > 0))
        table = {}
        for r in rule_objs:
            row = []
            for n in ns:
                # a scheme drawing distinct tokens draws fewer than n from a smaller support
                ok = r.supports(n, V) and r.drafts.fan_out(n, support) == n
                if ok and r.verifier.host_only and support**n > 20_000:
                    ok = False
                row.append(acceptance(r, p, q, n, num_samples=args.mc_samples) if ok else None)
            table[r.name] = row
        bounds = {}
        for label, fn in bound_rows:
            vals = []
            for n in ns:
                try:
                    vals.append(float(fn(p, q, n)))
                except ValueError:
                    vals.append(None)
            bounds[label] = vals
        results[ex_name] = (desc, table, bounds)
        print(f"\n### {ex_name}: {desc}\n")
        print("| rule | " + " | ".join(f"n={n}" for n in ns) + " |")
        print("|---|" + "---|" * len(ns))
        for rname, row in table.items():
            print(f"| {rname} | " + " | ".join(_fmt(a) for a in row) + " |")
        for label, vals in bounds.items():
            print(f"| *{label}* | " + " | ".join("—" if v is None else f"{v:.4f}" for v in vals) + " |")
    print("\nAcceptance = P(emitted token is one of the drafts); '~' marks a Monte-Carlo estimate "
          f"({args.mc_samples} runs), otherwise closed form or exact enumeration.")
    if args.out:
        _plot(results, ns, args.out)
        print(f"plot written to {args.out}")
    return 0


def _bounds_rows():
    """Optimal-acceptance rows: alpha* for every registered draft scheme whose set law has a
    known family (``DraftScheme.family``); a row is blank where the scheme does not draw n."""
    import jax

    import spectheory.bounds as b
    from spectheory import drafts

    def make(scheme):
        def fn(p, q, n):
            with jax.enable_x64(True):
                return b.optimal_acceptance(p, q, n, scheme).value

        return fn

    known = [drafts.scheme(name) for name in drafts.schemes()]
    return [(f"alpha* ({s.name})", make(s)) for s in known if s.family is not None]


def _plot(results, ns, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (ex_name, (desc, table, bounds)) in zip(axes[0], results.items()):
        for rname, row in table.items():
            xs = [n for n, a in zip(ns, row) if a is not None]
            ys = [a.value for a in row if a is not None]
            if xs:
                ax.plot(xs, ys, marker="o", label=rname)
        for (label, vals), style in zip(bounds.items(), itertools.cycle(["--", ":", "-.", (0, (1, 3))])):
            xs = [n for n, v in zip(ns, vals) if v is not None]
            ys = [v for v in vals if v is not None]
            if xs:
                ax.plot(xs, ys, linestyle=style, color="black", alpha=0.6, label=label)
        ax.set_title(ex_name, fontsize=10)
        ax.set_xlabel("number of drafts n")
        ax.set_ylabel("acceptance rate")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def list_rules(args) -> int:
    import spectheory

    for name in spectheory.rules():
        r = spectheory.rule(name)
        n = f"n={r.fixed_n}" if r.fixed_n else "any n"
        print(f"{name:12s} drafts={r.drafts.name:20s} {n:6s} {r.description}")
    return 0


def audit(args) -> int:
    import spectheory
    from spectheory.audit import exact

    from spectheory import _validation as _v

    p, q = _load_vector(args.p, "p"), _load_vector(args.q, "q")
    try:
        _v.as_probs(p, f"--p ({args.p})")
        _v.as_probs(q, f"--q ({args.q})")
        _v.same_vocab(p, q, f"--p ({args.p})", f"--q ({args.q})")
        r = spectheory.rule(args.rule)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    try:
        res = exact(r, p, q, args.n)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(f"rule={args.rule} n={args.n} acceptance={res.acceptance:.12f} max|output - p|={res.max_error:.3e}")
    print("lossless" if res.max_error <= 1e-12 else "NOT lossless")
    return 0 if res.max_error <= 1e-12 else 1


def _load_plugins(paths) -> None:
    """Import user Python files (e.g. one that calls ``spectheory.register``) before a command
    runs, so the rules and schemes they register are listed, compared and audited."""
    import importlib.util

    for path in paths or []:
        f = Path(path)
        if f.suffix != ".py" or not f.is_file():
            raise SystemExit(f"error: --plugin: expected a Python file, got {path}")
        name = f.stem
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(f.resolve()):
            continue  # already imported (registration happens once)
        spec = importlib.util.spec_from_file_location(name, f.resolve())
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # e.g. a refused registration, a syntax error in the file
            del sys.modules[name]
            raise SystemExit(f"error: --plugin {path}: {type(e).__name__}: {e}") from None


def main(argv=None) -> int:
    """Entry point of the ``spectheory`` command."""
    parser = argparse.ArgumentParser(prog="spectheory", description="Speculative-decoding theory and audits.")
    plugin = argparse.ArgumentParser(add_help=False)
    plugin.add_argument("--plugin", action="append", metavar="FILE",
                        help="a Python file to import first, e.g. one registering a rule (repeatable)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", parents=[plugin],
                       help="acceptance of every registered rule for n = 1..N, table + plot")
    c.add_argument("--example", action="append", help="built-in example name (repeatable; default all)")
    c.add_argument("--p", help="target law p as .npy or .json")
    c.add_argument("--q", help="draft law q as .npy or .json")
    c.add_argument("--max-n", type=int, default=8, help="largest number of drafts (default 8)")
    c.add_argument("--rules", help="comma-separated rule names (default: all registered)")
    c.add_argument("--mc-samples", type=int, default=20_000, help="Monte-Carlo runs where no exact route fits")
    c.add_argument("--out", default="compare.png", help="PNG plot path ('' to skip; default compare.png)")
    c.set_defaults(func=compare)
    r = sub.add_parser("rules", parents=[plugin], help="list the registered rules")
    r.set_defaults(func=list_rules)
    a = sub.add_parser("audit", parents=[plugin], help="exact audit of one rule on p, q files")
    a.add_argument("rule", help="a registered rule name (see `spectheory rules`)")
    a.add_argument("--p", required=True, help="target law p as .npy or .json")
    a.add_argument("--q", required=True, help="draft law q as .npy or .json")
    a.add_argument("--n", type=int, default=1, help="number of drafts (default 1)")
    a.set_defaults(func=audit)
    args = parser.parse_args(argv)
    for opt in ("max_n", "mc_samples", "n"):
        if getattr(args, opt, 1) < 1:
            parser.error(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    if args.plugin:
        import spectheory  # noqa: F401  (the built-in rules first)

        _load_plugins(args.plugin)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
