"""Embedding fidelity: how close a pruned model's embeddings stay to the reference model's.

For an embedding model (sentence encoders, feature extractors) there is often no label to
score; what matters is that each input still maps to (nearly) the same direction. The fidelity
of sample ``i`` is the cosine similarity ``<e_i, r_i> / (||e_i|| ||r_i||)`` of its embedding
``e_i`` with the reference embedding ``r_i`` (each flattened to one vector); 1 means the same
direction. A zero vector has no direction: its similarity counts as 1 against another zero
vector and 0 otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from prunekit.errors import ConfigError
from prunekit.evaluation._arrays import ArrayLike, as_tensor, check_rows

__all__ = ["EmbeddingFidelity", "cosine_fidelity", "cosine_similarities"]


def cosine_similarities(embeddings: ArrayLike, reference: ArrayLike) -> torch.Tensor:
    """Per-sample cosine similarity (float64, ``(N,)``) of ``embeddings`` with ``reference``.

    Example:
        >>> cosine_similarities([[1.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [1.0, 0.0]]).tolist()
        [1.0, 0.7071067811865475]
    """
    emb = as_tensor(embeddings, "embeddings").double()
    ref = as_tensor(reference, "reference").double()
    check_rows(emb, ref, "embeddings and reference")
    emb, ref = emb.reshape(emb.shape[0], -1), ref.reshape(ref.shape[0], -1)
    if emb.shape != ref.shape:
        raise ConfigError(
            f"embeddings have {emb.shape[1]} features per sample and the reference "
            f"{ref.shape[1]}; compare outputs of the same width (the embedding, not a pruned "
            "hidden layer)"
        )
    dot = (emb * ref).sum(dim=1)
    norms = emb.norm(dim=1) * ref.norm(dim=1)
    both_zero = (emb.norm(dim=1) == 0) & (ref.norm(dim=1) == 0)
    cos = torch.where(norms > 0, dot / norms.clamp(min=1e-300), torch.zeros_like(dot))
    return torch.where(both_zero, torch.ones_like(cos), cos).clamp(-1.0, 1.0)


@dataclass
class EmbeddingFidelity:
    """Cosine fidelity of embeddings to a reference model's embeddings.

    Attributes:
        num_samples: Samples compared.
        mean: Mean cosine similarity.
        min: Worst (lowest) cosine similarity.
        per_sample: Cosine similarity of every sample, in data order.

    Example:
        >>> f = cosine_fidelity([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]])
        >>> f.mean, f.min, f.per_sample
        (0.5, 0.0, [1.0, 0.0])
    """

    num_samples: int
    mean: float
    min: float
    per_sample: list[float]

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddingFidelity:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


def cosine_fidelity(embeddings: ArrayLike, reference: ArrayLike) -> EmbeddingFidelity:
    """Mean, minimum and per-sample cosine similarity of ``embeddings`` to ``reference``.

    Args:
        embeddings: The pruned model's embeddings, ``(N, D)`` (or ``(N, ...)``, flattened).
        reference: The reference model's embeddings of the same inputs, same shape.

    Example:
        >>> cosine_fidelity([[3.0, 4.0]], [[3.0, 4.0]]).mean
        1.0
    """
    cos = cosine_similarities(embeddings, reference)
    return EmbeddingFidelity(
        num_samples=int(cos.shape[0]),
        mean=float(cos.mean()),
        min=float(cos.min()),
        per_sample=[float(c) for c in cos.tolist()],
    )
