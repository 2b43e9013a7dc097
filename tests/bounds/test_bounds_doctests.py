"""The examples in the docstrings of spectheory.bounds run and print what they claim."""

import doctest

import pytest

from spectheory.bounds import _lp, _optimal, _speed, _subset, _vocabtrim


@pytest.mark.parametrize("module", [_optimal, _subset, _lp, _speed, _vocabtrim], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
