"""The base of every config section: unknown keys are errors, assignments are validated.

A field's description is the docstring under it (use_attribute_docstrings): docs/config.md is generated from
them (`make docs`), and tests/test_docs.py fails on a field without one."""
from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)

