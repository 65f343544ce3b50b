"""pytest's entry: the fixtures of tests/session_fixtures.py serve the tests and the library's
docstring examples (``pytest --doctest-modules`` collects those from tfemotion/) alike."""

pytest_plugins = ["session_fixtures"]

# The light client's generated protos: no examples, and each module registers its file once.
collect_ignore = ["client/tfemotion_client/protos", "client/build"]
