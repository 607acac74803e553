"""The architecture coverage sweep behind ``make coverage`` (docs/COVERAGE.md)."""
