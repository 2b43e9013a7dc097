"""Draft schemes: how a tuple of drafts is drawn from the draft law ``q``.

Each scheme is a :class:`spectheory.DraftScheme` with a jit-clean sampler and the exact
enumerated joint law used by the audits.
"""

from spectheory.drafts._iid import IID, MAX_LAW_SIZE, iid_law, iid_sample
from spectheory.drafts._without_replacement import (
    WITHOUT_REPLACEMENT,
    without_replacement_law,
    without_replacement_sample,
)
from spectheory.drafts._greedy import GREEDY, greedy_law, greedy_sample, greedy_top
from spectheory.drafts._hub import HUB, hub_law, hub_sample

__all__ = [
    "IID",
    "MAX_LAW_SIZE",
    "iid_law",
    "iid_sample",
    "WITHOUT_REPLACEMENT",
    "without_replacement_law",
    "without_replacement_sample",
    "GREEDY",
    "greedy_law",
    "greedy_sample",
    "greedy_top",
    "HUB",
    "hub_law",
    "hub_sample",
    "scheme",
]

_SCHEMES = {s.name: s for s in (IID, WITHOUT_REPLACEMENT, GREEDY, HUB)}


def scheme(name: str):
    """Return the built-in draft scheme called ``name``.

    Known names: ``"iid"``, ``"without_replacement"``, ``"greedy"``, ``"hub"``.

    >>> scheme("hub").min_n
    2
    """
    try:
        return _SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown draft scheme {name!r}; known: {', '.join(sorted(_SCHEMES))}") from None
