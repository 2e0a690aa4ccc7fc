"""hbnb.training: fine-tuning encoders with a batch strategy.

- `pairs`: the training table as pair codes over texts stored once (`PairIndex`), and the
  run's nested design (`n_languages`, `pairs: k`, `train_items` under `design_seed`);
- `sampler`: X-X, X-Y, hybrid and en-en batches as a sentence-transformers batch sampler,
  and `random` (sentence-transformers' `NoDuplicatesBatchSampler`, the uncontrolled baseline);
- `batch_log`: what each batch really held (`batches.jsonl`, `batch_mix.json`);
- `trainer`: `train(params)` through `SentenceTransformerTrainer`, with resume; `resolve(params)`:
  the design and budget of a run, validated against its data without a model;
- `losses`: the loss (`training.loss`): MNRL, or cached MNRL (GradCache) for large batches;
- `negatives`: the hard negatives (`batching.hard_negatives`: the data's paragraph negative, or
  mined ones), each with the items it answers, which the sampler keeps out of its step;
- `mining`: `hard_negatives: mined` through sentence-transformers' `mine_hard_negatives`, cached;
- `lora`: LoRA adapters (`training.lora`) through peft, saved and reloaded as sentence-transformers does;
- `tracking`: the experiment trackers (`training.report_to`), TensorBoard in the run's folder by default;
- `distributed`: the process rank and world size under DDP.

`hbnb.batching` (the module before this package) still imports, as this package.
"""

from __future__ import annotations

from hbnb.params import BatchingParams, TrainParams
from hbnb.training.batch_log import RecordingCollator, realised_mix
from hbnb.training.pairs import Batch, PairIndex
from hbnb.training.sampler import HybridBatchSampler, SamplerFactory
from hbnb.training.trainer import last_complete_checkpoint, load_params, resolve, train

__all__ = [
    "Batch",
    "BatchingParams",
    "HybridBatchSampler",
    "PairIndex",
    "RecordingCollator",
    "SamplerFactory",
    "TrainParams",
    "last_complete_checkpoint",
    "load_params",
    "realised_mix",
    "resolve",
    "train",
]
