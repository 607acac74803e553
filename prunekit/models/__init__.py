"""Reference models used by the demo, the tests and the benchmarks."""

from prunekit.models.digits_cnn import DigitsCNN

__all__ = ["DigitsCNN"]
