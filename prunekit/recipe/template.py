"""The commented starter recipe ``prunekit init`` writes (it validates as is)."""

from __future__ import annotations

from pathlib import Path

from ..errors import RecipeError

__all__ = ["STARTER_RECIPE", "write_starter"]

STARTER_RECIPE = """\
# prunekit recipe: what to prune, on what data, how to cut, recover and measure.
# Run it with:  prunekit prune recipe.yaml      (or: prunekit search recipe.yaml)
name: lenet_mnist            # {name} in output.dir becomes this
# threads: 4                 # torch threads for the whole run (default: OMP_NUM_THREADS or
                             # torch's own choice); evaluation.latency_threads for timing

model:
  # a built-in name (mlp, lenet5, resnet20, resnet56, vgg, cnn1d, digits_cnn),
  # torchvision:resnet18, timm:resnet50, hf:/path/to/local/model,
  # or your own factory: python:./my_model.py:build  (path relative to this file)
  name: lenet5
  # weights: trained.safetensors   # a state_dict (.safetensors, or .pt loaded weights_only)
  kwargs: {}                       # extra keyword arguments for the builder

data:
  # digits, mnist, animal_mnist, mnist1d, iris, wine, breast_cancer,
  # or python:./my_data.py:loaders returning (train_loader, val_loader[, test_loader])
  name: mnist
  batch_size: 64
  seed: 0

train:                       # baseline training when model.weights is absent (cached)
  epochs: 3
  lr: 0.001
  optimizer: adam

prune:
  importance: taylor         # l1, l2, fpgm, lamp, bn_scale, random, taylor, fisher, ...
  scope: global              # global: rank units across layers; local: same ratio per layer
  target_macs: 0.5           # keep half the MACs (or ratio: 0.5, or target_params: 0.5)
  round_to: 1
  schedule: one-shot         # or iterative, with steps: 3

# search:                    # instead of prune: find the cut
#   tolerance: 0.01          # smallest model within 1 point of accuracy (or budget: {macs: 0.5})
#   strategies: [{importance: l2}, {importance: taylor}]

recovery:
  bn_reestimation: true     # always re-estimate BatchNorm statistics after the cut
  compensate: false          # least-squares refit of the layers after each cut
  finetune: {epochs: 2, lr: 0.001, optimizer: adam}
  distill: {temperature: 4.0, alpha: 0.5}   # learn from the unpruned model while fine-tuning

evaluation:
  split: test
  latency: true
  batch_sizes: [1, 64]
  # latency_threads: 1       # threads while latency is timed only (default: the run's own)
  sensitivity: false         # per-layer sensitivity curves (slower)

output:
  dir: runs/{name}
"""


def write_starter(path: str | Path, *, force: bool = False) -> Path:
    """Write :data:`STARTER_RECIPE` to ``path``.

    Raises:
        RecipeError: ``path`` exists and ``force`` is false.

    Example:
        >>> import tempfile, os
        >>> from prunekit.recipe import load_recipe
        >>> p = write_starter(os.path.join(tempfile.mkdtemp(), "recipe.yaml"))
        >>> load_recipe(p).prune.target_macs
        0.5
    """
    out = Path(path)
    if out.exists() and not force:
        raise RecipeError(f"{out} already exists; pass --force to overwrite it, or another path")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(STARTER_RECIPE)
    return out
