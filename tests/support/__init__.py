"""Helpers shared by the tests, benches and fixture scripts: import them as
``from tests.support.<module> import ...`` (one import style)."""
