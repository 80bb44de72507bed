"""Shared test helpers (real servers and fixtures, no mocks of our own code)."""
