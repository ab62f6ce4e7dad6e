"""The base of every config section (mmgym.config, mmgym.book.config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: unknown keys rejected, attribute docstrings as field descriptions,
    assignments validated."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)
