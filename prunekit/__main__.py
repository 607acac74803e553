"""``python -m prunekit`` (what ``torchrun ... -m prunekit prune recipe.yaml`` runs)."""

from prunekit.cli import main

if __name__ == "__main__":
    main()
