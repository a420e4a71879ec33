"""Base class of every generated protocol model (hand-written; ``_generated`` imports it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ProtocolModel(BaseModel):
    """Wire camelCase in and out, snake_case attributes, unknown fields kept.

    - ``validate_by_name`` / ``validate_by_alias`` (pydantic >= 2.11, the non-deprecated spelling
      of ``populate_by_name=True``): ``Model(turn_id=...)`` and ``Model.model_validate(
      {"turnId": ...})`` both work.
    - ``serialize_by_alias``: ``model_dump()`` / ``model_dump_json()`` give the wire's camelCase.
    - ``extra="allow"``: fields added by newer servers survive validation and re-serialization
      (classes the schema closes with ``additionalProperties: false`` still forbid them).
    - ``defer_build``: the ~1,000 generated classes build their validators on first use, which keeps
      ``import codex_notebook.protocol._generated`` cheap.
    """

    model_config = ConfigDict(
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        defer_build=True,
    )
