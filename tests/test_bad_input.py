"""Bad input across the public API: every public name × strategies of bad values, eagerly,
under an eager ``jax.vmap`` and under ``jax.jit``.

* eagerly: a ``ValueError`` or ``TypeError`` whose message names the argument, within a time
  limit (no hang), never a returned value;
* under ``jit`` and an eager ``vmap`` (value cases: same shapes and dtypes): either an error at
  trace time, or an output that flags the input: NaN in a float output or the token flag -1,
  and never a token id outside ``[0, V) ∪ {-1}`` (so an out-of-range draft is never accepted).

The table (``tests/_bad_input_table.py``) must hold every public name, or list it in
``EXEMPT`` with a reason. ``KNOWN_GAPS`` lists the (name, mode, case) triples that still fail;
they are strict xfails, so a fix makes them fail until they are removed from the set.
"""

from __future__ import annotations

import re
import signal
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from _bad_input_table import ALIASES, EXEMPT, NO_LEGAL_CALL, TABLE, public_names

#: (name, mode, case) triples that fail because of code outside bounds/trees/sampling/parallel
#: (verifiers, drafts, models, registry, audit, testing, decode); strict xfails.
KNOWN_GAPS: set = set()

#: Seconds one call may take before it counts as a hang.
TIME_LIMIT = 20
EXAMPLES = 2


@contextmanager
def time_limit(seconds=TIME_LIMIT):
    def handler(signum, frame):
        raise TimeoutError(f"call did not return within {seconds} s (hang)")

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _names_arg(msg: str, arg: str) -> bool:
    return re.search(rf"(?<![A-Za-z_]){re.escape(arg)}(?![A-Za-z_])", msg) is not None


def _leaves(x):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(x) if hasattr(a, "dtype") or np.isscalar(a)]


def _check_traced_output(entry, case, arg, out):
    """Under jit/vmap: token ids in [0, V) ∪ {-1}; for value faults other than out-of-range ids,
    a NaN in a float output or a -1 token (never a plausible number)."""
    if entry.tokens is not None:
        tok = np.asarray(entry.tokens(out))
        assert np.all((tok >= -1) & (tok < entry.vocab)), f"token ids outside [0, {entry.vocab}) ∪ {{-1}}: {tok}"
        flagged = bool(np.any(tok == -1))
    else:
        flagged = False
    if case.name == "id_range" and entry.tokens is not None:
        return  # an out-of-range draft must not be emitted (checked above); rejecting it is legal
    leaves = _leaves(entry.out(out) if entry.tokens is None else out)
    flagged = flagged or any(np.issubdtype(a.dtype, np.floating) and np.any(np.isnan(a)) for a in leaves)
    assert flagged, f"plausible output for bad {arg} ({case.name}): {out}"


def _argname(arg) -> str:
    return "|".join(arg) if isinstance(arg, tuple) else arg


def _params():
    for name, entry in sorted(TABLE.items()):
        seen = set()
        for case in entry.cases:
            # eager vmap: one case per argument (it shows whether the value checks run at all)
            traced_modes = ["jit"] + (["vmap"] if case.name == "nan" else [])
            modes = ["eager"] + (traced_modes if case.value and entry.traced else [])
            for mode in modes:
                key = (name, mode, case.name, str(case.arg))
                if key in seen:
                    continue
                seen.add(key)
                yield pytest.param(name, mode, case, id=f"{name.removeprefix('spectheory.')}-{mode}-{case.name}-{_argname(case.arg)}")


_JITTED: dict = {}


def _jitted(name, entry, static):
    if name not in _JITTED:
        traced = entry.traced

        def f(*arrays):
            return entry.fn(**static, **dict(zip(traced, arrays)))

        _JITTED[name] = jax.jit(f)
    return _JITTED[name]


_STATIC: dict = {}


@pytest.mark.parametrize("name,mode,case", list(_params()))
@settings(max_examples=EXAMPLES, suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
@given(data=st.data())
def test_bad_input(request, name, mode, case, data):
    if (name, mode, case.name) in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(strict=True, reason="known gap outside this area"))
    entry = TABLE[name]
    kwargs = entry.good()
    arg = data.draw(st.sampled_from(case.arg), label="argument") if isinstance(case.arg, tuple) else case.arg
    bad = data.draw(case.strategy(kwargs.get(arg)), label=arg)
    kwargs[arg] = bad
    if mode == "eager":
        with time_limit():
            try:
                out = entry.fn(**kwargs)
            except (ValueError, TypeError) as e:
                assert _names_arg(str(e), arg), f"error does not name {arg!r}: {e}"
                return
        raise AssertionError(f"bad {arg} ({case.name}) = {bad!r} returned {out!r} instead of raising")
    # traced modes: the value faults keep shapes and dtypes
    static = {k: v for k, v in kwargs.items() if k not in entry.traced}
    arrays = [jnp.asarray(kwargs[k]) for k in entry.traced]
    with time_limit():
        try:
            if mode == "jit":
                if arg in entry.traced:
                    if name not in _STATIC:
                        _STATIC[name] = static
                    out = _jitted(name, entry, _STATIC[name])(*arrays)
                else:
                    out = jax.jit(lambda *a: entry.fn(**static, **dict(zip(entry.traced, a))))(*arrays)
            else:
                out = jax.vmap(lambda *a: entry.fn(**static, **dict(zip(entry.traced, a))))(*[a[None] for a in arrays])
                out = jax.tree_util.tree_map(lambda a: a[0], out)
        except (ValueError, TypeError) as e:
            assert _names_arg(str(e), arg), f"error does not name {arg!r}: {e}"
            return
    _check_traced_output(entry, case, arg, out)


@pytest.mark.parametrize("name", sorted(set(TABLE) - NO_LEGAL_CALL))
def test_legal_call_succeeds(name):
    """The table's legal call runs (so a refused bad call is refused for its bad argument)."""
    entry = TABLE[name]
    with time_limit(60):
        entry.fn(**entry.good())


def test_every_public_name_is_in_the_table():
    names = public_names()
    missing = sorted(n for n in names if n not in TABLE and n not in EXEMPT and ALIASES.get(n) not in TABLE)
    assert not missing, f"public names without a bad-input entry or an exemption: {missing}"
    stale = sorted(n for n in list(TABLE) + list(EXEMPT) if n not in names)
    assert not stale, f"table entries that are not public names: {stale}"
    assert all(reason.strip() for reason in EXEMPT.values())


def test_known_gaps_are_in_the_table():
    params = {(p.values[0], p.values[1], p.values[2].name) for p in _params()}
    assert KNOWN_GAPS <= params, sorted(KNOWN_GAPS - params)
