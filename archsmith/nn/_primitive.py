"""``Primitive``: a search primitive that builds a plain module inside ``fixed_arch``."""

from __future__ import annotations

from typing import Any

from archsmith.space import fixed_context

from ._mutable_module import MutableModule


class Primitive(MutableModule):
    """Construction dispatches on the mode: inside ``fixed_arch``,
    ``create_frozen`` returns the plain module for the sample (only the chosen
    candidates are built); otherwise ``__init__`` builds the searchable primitive."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if fixed_context() is not None:
            return cls.create_frozen(*args, **kwargs)
        return super().__new__(cls)

    @classmethod
    def create_frozen(cls, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
