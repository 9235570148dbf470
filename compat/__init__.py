"""Compatibility runs of other projects' test suites against this one (see README.md)."""
