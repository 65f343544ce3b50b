"""pytest's entry: the fixtures of tests/session_fixtures.py serve the tests and the library's
docstring examples (``pytest --doctest-modules`` collects those from tfemotion/) alike."""

pytest_plugins = ["session_fixtures"]
