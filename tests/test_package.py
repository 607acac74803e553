"""The package import itself: light (no plotting stack) and complete (lazy report)."""

from __future__ import annotations

import subprocess
import sys


def test_import_prunekit_does_not_load_matplotlib_until_report_is_used() -> None:
    code = (
        "import sys, prunekit\n"
        "before = 'matplotlib' in sys.modules\n"
        "fn = prunekit.report.write_report\n"
        "print(before, 'matplotlib' in sys.modules, 'report' in dir(prunekit))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_unknown_attribute_names_the_module() -> None:
    import prunekit

    try:
        prunekit.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as err:
        assert "prunekit" in str(err) and "no_such_thing" in str(err)
    else:
        raise AssertionError("prunekit.no_such_thing did not raise AttributeError")
