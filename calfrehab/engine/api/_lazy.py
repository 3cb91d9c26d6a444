"""Names a module serves by importing, on first use, the module that holds them.

``calfrehab next`` must start near the cost of importing pydantic, click and
durable-rules (issue 28 item 4), yet ``from calfrehab.engine import api``
offers the batch pool, the FHIR mapping, the trail and the report. So the
API package, and an audience module whose names live in heavy modules, list
their names under ``if TYPE_CHECKING:`` imports (what mypy and pyright read:
a mistyped name is an error there, ``tests/engine/api/test_api.py``) and serve them at
run time through the PEP 562 ``__getattr__`` made here, imported in the
``else:`` branch that type checkers never read.

A name served once is stored on the module, so it is a plain attribute from
then on (the second look-up costs what any attribute costs).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_names(module: str, table: Mapping[str, tuple[str, ...]],
               serve: Callable[[object], object] = lambda value: value,
               ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``module``: each name of
    ``table[source]`` is imported from the module ``source`` when first asked
    for, and ``serve(value)`` stored and returned (the API package guards
    its functions' arguments so, ``_guard.py``). Any other name is an
    AttributeError, as for a plain module."""
    where = {name: source for source, names in table.items() for name in names}

    def __getattr__(name: str) -> object:
        source = where.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = serve(getattr(importlib.import_module(source), name))
        setattr(sys.modules[module], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module]), *where})

    return __getattr__, __dir__
