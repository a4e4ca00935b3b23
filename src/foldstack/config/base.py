"""The base of every config section: unknown keys are errors, assignments are validated.

A field's description is the docstring under it (use_attribute_docstrings): docs/config.md is generated from
them (`make docs`), and tests/test_docs.py fails on a field without one."""
from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


def drop_neutral(out: dict, section: BaseModel, neutral: dict) -> dict:
    """Keys added after artifacts were built are left out of a section's dump (so of every hash) while they hold
    the value that changes nothing, `neutral[key]`: older folders keep their keys. A value in `neutral` may be a
    callable(section) -> bool instead, true when the key changes nothing."""
    for key, value in neutral.items():
        if value(section) if callable(value) else getattr(section, key) == value:
            out.pop(key, None)
    return out
