"""hbnb: hybrid-batch training and analysis of multilingual dense retrievers.

The data flow, one subpackage each: `data` -> `models` -> `training` -> `evaluation`
-> `experiment` -> `report` (ARCHITECTURE.md). Modules that moved into them still
import under their old names (`MOVED`), so existing notebooks and scripts keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# old module -> where it lives now
MOVED = {
    "hbnb.scoring": "hbnb.evaluation",
    "hbnb.encoding": "hbnb.evaluation.encoding",
    "hbnb.significance": "hbnb.evaluation.significance",
    "hbnb.trec": "hbnb.evaluation.trec",
    "hbnb.batching": "hbnb.training",
    "hbnb.pipeline": "hbnb.experiment.pipeline",
    "hbnb.plots": "hbnb.report.plots",
    "hbnb.explorer": "hbnb.report.explorer",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module that replaced it (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ARG002 - the import protocol
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):  # noqa: ANN001, ARG002 - a placeholder the import system swaps out
        return None

    def exec_module(self, module) -> None:  # noqa: ANN001
        # the import system returns whatever sys.modules holds under the name after this call
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__])


sys.meta_path.append(_MovedModules())
