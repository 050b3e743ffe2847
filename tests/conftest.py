"""Test-wide settings."""

# Scripts that tests run as subprocesses are not test modules (nor doctests).
collect_ignore_glob = ["*/scripts/*"]
