"""Draft schemes: how a tuple of drafts is drawn from the draft law ``q``.

Each scheme is a :class:`spectheory.DraftScheme` with a jit-clean sampler and the exact
enumerated joint law used by the audits.
"""

from spectheory.drafts._iid import IID, MAX_LAW_SIZE, iid_law, iid_sample

__all__ = ["IID", "MAX_LAW_SIZE", "iid_law", "iid_sample", "scheme"]

_SCHEMES = {"iid": IID}


def scheme(name: str):
    """Return the built-in draft scheme called ``name`` (e.g. ``"iid"``)."""
    try:
        return _SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown draft scheme {name!r}; known: {', '.join(sorted(_SCHEMES))}") from None
