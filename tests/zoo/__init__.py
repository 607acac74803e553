"""Architecture zoo: small, natural PyTorch models used to test prunekit.

Usage::

    from tests.zoo import ZOO  # or ``from zoo import ZOO`` under pytest's rootdir-less import

    case = ZOO["resnet_basic"]()
    out = case.run()  # dispatches on Tensor / tuple / dict example_inputs
"""

from .common import ZooCase, call_model, randomize_norms
from .models import ZOO

__all__ = ["ZOO", "ZooCase", "call_model", "randomize_norms"]
