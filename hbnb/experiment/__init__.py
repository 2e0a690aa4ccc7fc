"""hbnb.experiment: an experiment file expanded into runs, executed as stage notebooks.

- `sweep`: the grid of runs of a `sweep:` block, and the shared untuned baselines;
- `pipeline`: `hbnb run`: the papermill stages with fingerprints, resume, lock, HTML.

The parameter schema itself is `hbnb.params` (every stage reads it).
`hbnb.pipeline` (the module before this package) still imports, as `hbnb.experiment.pipeline`.
"""

from __future__ import annotations

from hbnb.experiment.sweep import Baseline, RunSpec, baselines, load, runs

__all__ = ["Baseline", "RunSpec", "baselines", "load", "runs"]
