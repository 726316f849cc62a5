"""Shared test helpers: builders of records and log objects, readers of what the stand-ins
hold, fixed moments. Tests import helpers from here — never from a ``conftest`` or another
test module (``tests/test_layering.py`` checks it); fixtures stay in the ``conftest`` files.
"""
