"""What the config's dataclasses declare, read back: their public fields, their annotations
(with the Literal / Annotated constraints) and the docstring written under each field.

`schema` declares the tables; `layers` and `toml_io` walk them through these readers, so neither
needs anything private of the schema.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from functools import lru_cache
from typing import Any, get_type_hints

# Config's own bookkeeping fields, never keys of kvcap.toml.
INTERNAL_FIELDS = ("source", "provenance")


def public_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of dataclass `cls` that are settings (not INTERNAL_FIELDS), in declared order."""
    return [f for f in dataclasses.fields(cls) if f.name not in INTERNAL_FIELDS]


@lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> its annotation, constraints kept (`Annotated[float, Range(...)]`)."""
    return get_type_hints(cls, include_extras=True)


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal written under it in the class body (read from source once)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs
