"""The test suite, as a package: its modules get unique names (tests.conftest beside tests.engine.conftest)."""
