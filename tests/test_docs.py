"""Every public name is documented, and every docstring example runs.

"Documented" means written documentation, not the text Python generates:

* a function: a docstring with an ``Args:`` section naming every parameter (when it has any)
  and a ``Returns:`` section (unless annotated ``-> None``);
* a NamedTuple class: its own docstring (not the generated ``Name(a, b)``) with an
  ``Attributes:`` section naming every field;
* another class: its own docstring, with ``Args:`` (class or ``__init__`` docstring) naming the
  constructor's parameters;
* a constant or a value (a rule, a verifier, a draft scheme): a ``#:`` comment on the line
  above its assignment in the package source, or a string literal right after it.
"""

import ast
import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import spectheory

SUBPACKAGES = ["spectheory"] + [
    f"spectheory.{m.name}" for m in pkgutil.iter_modules(spectheory.__path__) if m.ispkg
]
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(spectheory.__path__, "spectheory.")
    if m.name != "spectheory.__main__"
)
SOURCES = {p: p.read_text().splitlines() for p in Path(spectheory.__file__).parent.rglob("*.py")}

#: Public names whose documentation is incomplete in files outside bounds/trees/sampling/
#: parallel (strict xfails: remove a name once its docstring is written).
DOC_GAPS: set = set()


def _public():
    for pkg in SUBPACKAGES:
        mod = importlib.import_module(pkg)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not inspect.ismodule(obj):
                yield f"{pkg}.{name}", obj


PUBLIC = dict(_public())


def _section(doc: str, header: str) -> str:
    """The text of a Google-style section (``header:`` up to the next unindented header)."""
    m = re.search(rf"^(\s*){header}:\s*$(.*?)(?=^\1[A-Z][A-Za-z ]*:\s*$|\Z)", doc, re.M | re.S)
    return m.group(2) if m else ""


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


def _params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], None
    names = [n for n, p in sig.parameters.items() if n not in ("self", "cls")
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, sig.return_annotation


def _is_namedtuple(cls) -> bool:
    return inspect.isclass(cls) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _assignment_documented(name: str) -> bool:
    """A module-level assignment of the name with a ``#:`` comment above it or a string
    literal right after it (the attribute docstring of Sphinx autodoc)."""
    short = name.rsplit(".", 1)[-1]
    for path, lines in SOURCES.items():
        tree = ast.parse("\n".join(lines))
        body = tree.body
        for i, node in enumerate(body):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.AnnAssign) else []
            if not any(isinstance(t, ast.Name) and t.id == short for t in targets):
                continue
            nxt = body[i + 1] if i + 1 < len(body) else None
            if (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str) and nxt.value.value.strip()):
                return True
            j = node.lineno - 2
            while j >= 0 and lines[j].startswith("#") and not lines[j].startswith("#:"):
                j -= 1
            if j >= 0 and lines[j].startswith("#:"):
                return True
    return False


def doc_problems(name: str, obj) -> list:
    """What is missing from the documentation of one public name."""
    problems = []
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if _is_namedtuple(obj):
            if not doc.strip() or re.fullmatch(rf"\s*{obj.__name__}\(.*\)\s*", doc, re.S):
                return ["no written class docstring (only the generated one)"]
            attrs = _section(doc, "Attributes")
            if not attrs:
                problems.append("no Attributes: section")
            problems += [f"field {f!r} not in Attributes:" for f in obj._fields if not _mentions(attrs, f)]
            return problems
        if not doc.strip():
            return ["no class docstring"]
        params, _ = _params(obj)
        init_doc = inspect.getdoc(obj.__init__) if "__init__" in obj.__dict__ else ""
        args = _section(doc, "Args") + _section(init_doc or "", "Args")
        if params and not args:
            problems.append("no Args: section for the constructor")
        problems += [f"constructor parameter {p!r} not in Args:" for p in params if args and not _mentions(args, p)]
        return problems
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        doc = inspect.getdoc(obj) or ""
        if not doc.strip():
            return ["no docstring"]
        params, ret = _params(obj)
        args = _section(doc, "Args")
        if params and not args:
            problems.append("no Args: section")
        problems += [f"parameter {p!r} not in Args:" for p in params if args and not _mentions(args, p)]
        if ret is not None and ret != "None" and not _section(doc, "Returns") and not _section(doc, "Yields"):
            problems.append("no Returns: section")
        return problems
    # constants and values (rules, verifiers, schemes): a #: comment where they are assigned
    if not _assignment_documented(name):
        problems.append("no '#:' comment above (or string literal after) its assignment")
    return problems


@pytest.mark.parametrize("pkg", SUBPACKAGES)
def test_subpackages_have_docstrings(pkg):
    assert (importlib.import_module(pkg).__doc__ or "").strip(), pkg


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_is_documented(request, name):
    if name in DOC_GAPS:
        request.applymarker(pytest.mark.xfail(strict=True, reason="documentation gap outside this area"))
    problems = doc_problems(name, PUBLIC[name])
    assert not problems, f"{name}: {problems}"


def test_doc_checker_can_fail():
    """The checker rejects the generated NamedTuple docstring and a docstring without Args."""
    from typing import NamedTuple

    class Bare(NamedTuple):
        a: int

    def f(x):
        """Does something."""

    def g(x):
        """Does something.

        Args:
          y: another value.

        Returns:
          nothing useful.
        """

    assert doc_problems("Bare", Bare)
    assert "no Args: section" in doc_problems("f", f)
    assert doc_problems("g", g) == ["parameter 'x' not in Args:"]
    assert doc_problems("spectheory.nothing_assigned_here", object())


@pytest.mark.parametrize("modname", MODULES)
def test_doctests(modname):
    mod = importlib.import_module(modname)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} doctest(s) failed in {modname}"
