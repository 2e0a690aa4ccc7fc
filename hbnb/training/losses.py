"""The training loss of a run (`training.loss`).

`mnrl` is sentence-transformers' `MultipleNegativesRankingLoss`: every other positive
(and negative) of the batch is a negative. `cached-mnrl` is its GradCache form,
`CachedMultipleNegativesRankingLoss`: the batch is embedded in chunks of
`mini_batch_size` texts without gradients, the loss and its gradients with respect to
the embeddings are computed over the whole batch, then each chunk is embedded again
with gradients and those are applied. Same loss and gradients (up to float rounding;
dropout masks are replayed), memory of one chunk. The batch itself is hbnb's sampler's:
the loss only splits it for the encoder, so the batch composition (monolingual,
cross-lingual, hybrid) is unchanged.
"""

from __future__ import annotations

from typing import Any


def build_loss(model: Any, params: Any, distributed: bool = False) -> Any:
    """The loss of `params` (`TrainingParams`) for a `SentenceTransformer`."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if params.loss == "cached-mnrl":
        return CachedMultipleNegativesRankingLoss(
            model, scale=params.scale, mini_batch_size=params.mini_batch_size, gather_across_devices=distributed
        )
    return MultipleNegativesRankingLoss(model, scale=params.scale, gather_across_devices=distributed)
