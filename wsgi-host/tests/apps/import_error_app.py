"""Importing this module fails with an error of its own (not a missing module)."""
import this_dependency_does_not_exist  # noqa: F401

application = None
