"""Built-in real datasets that ship inside installed packages (no downloads)."""

from prunekit.data.digits import DIGITS_NUM_CLASSES, DIGITS_SHAPE, load_digits

__all__ = ["DIGITS_NUM_CLASSES", "DIGITS_SHAPE", "load_digits"]
