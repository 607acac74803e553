"""The conformance battery: the contract every criterion and every layer handler keeps.

Like timm's test over every registered model and scikit-learn's ``check_estimator``,
:func:`check_criterion` and :func:`check_handler` run a fixed set of checks on tiny
reference nets; ``tests/test_conformance.py`` runs them over every registered criterion
and handler, so registering a new one adds it to the test suite. Run them on your own
extensions before registering them:

    >>> import prunekit.conformance as pc
    >>> pc.check_criterion("l2").passed[:3]
    ['follows the Importance protocol', 'does not modify the model', 'scores every group']
"""

from .criteria import check_criterion
from .examples import handler_examples, register_handler_example
from .handlers import check_handler
from .nets import ReferenceNet, criterion_nets
from .report import ConformanceError, ConformanceReport

__all__ = [
    "ConformanceError",
    "ConformanceReport",
    "ReferenceNet",
    "check_criterion",
    "check_handler",
    "criterion_nets",
    "handler_examples",
    "register_handler_example",
]
