"""The unit tier's guard (tests/conftest.py): a unit test that asks for a heavy fixture fails before it is set up,
and one that imports sentence-transformers or Chroma fails; tests without the mark may do both."""

from __future__ import annotations

import sys
import types

import conftest
import pytest

pytestmark = pytest.mark.unit


class _Item:
    def __init__(self, fixturenames, unit=True):
        self.fixturenames = list(fixturenames)
        self._unit = unit

    def get_closest_marker(self, name):
        return pytest.mark.unit.mark if name == "unit" and self._unit else None


def _call(item):
    """Run the pytest_runtest_call wrapper around a test body that does nothing: it returns, it does not fail."""
    wrapper = conftest.pytest_runtest_call(item)
    next(wrapper)
    with pytest.raises(StopIteration):
        wrapper.send(None)


@pytest.mark.parametrize("fixture", sorted(conftest.HEAVY_FIXTURES))
def test_a_unit_test_asking_for_a_heavy_fixture_fails_at_setup(fixture):
    with pytest.raises(pytest.fail.Exception, match=fixture):
        conftest.pytest_runtest_setup(_Item(["tmp_path", fixture]))
    conftest.pytest_runtest_setup(_Item(["tmp_path", fixture], unit=False))  # an integration test may


def test_a_unit_test_with_light_fixtures_passes_the_guard():
    conftest.pytest_runtest_setup(_Item(["tmp_path", "monkeypatch", "settings", "fake_embeddings"]))


@pytest.mark.parametrize("module", conftest.HEAVY_MODULES)
def test_a_unit_test_that_imports_a_heavy_library_fails(monkeypatch, module):
    with monkeypatch.context() as m:  # undone before this test's own guard looks
        m.delitem(sys.modules, module, raising=False)
        wrapper = conftest.pytest_runtest_call(_Item([]))
        next(wrapper)
        m.setitem(sys.modules, module, types.ModuleType(module))  # the test body "imports" it
        with pytest.raises(pytest.fail.Exception, match=module):
            wrapper.send(None)


def test_a_heavy_library_loaded_before_the_test_or_by_an_integration_test_is_no_failure(monkeypatch):
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "chromadb", types.ModuleType("chromadb"))
        _call(_Item([]))  # loaded before the test: not its doing
    with monkeypatch.context() as m:
        m.delitem(sys.modules, "sentence_transformers", raising=False)
        wrapper = conftest.pytest_runtest_call(_Item([], unit=False))
        next(wrapper)
        m.setitem(sys.modules, "sentence_transformers", types.ModuleType("sentence_transformers"))
        with pytest.raises(StopIteration):
            wrapper.send(None)


def test_no_unit_test_in_the_suite_asks_for_a_heavy_fixture(request):
    unit = [i for i in request.session.items if i.get_closest_marker("unit") is not None]
    assert unit, "the unit tier is empty"
    offenders = [i.nodeid for i in unit if conftest.HEAVY_FIXTURES.intersection(getattr(i, "fixturenames", ()))]
    assert offenders == []
