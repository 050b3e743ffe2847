"""A built model's module tree with parameter counts: what a trial records of its
architecture, so a viewer (the dashboard) shows it without rebuilding the space."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["MAX_MODULES", "module_summary"]

#: Modules listed at most (a deep network has thousands; the top of the tree tells most).
MAX_MODULES = 2000


def module_summary(model: nn.Module, max_modules: int = MAX_MODULES) -> dict[str, Any]:
    """``{"total_params", "modules": [{"path", "type", "params", "depth"}], "truncated"}``
    in definition order; ``params`` counts every parameter under the module (a shared
    parameter once). The model is only read.

    >>> summary = module_summary(nn.Sequential(nn.Linear(2, 3), nn.ReLU()))
    >>> summary["total_params"], [(m["path"], m["type"], m["params"]) for m in summary["modules"]]
    (9, [('(model)', 'Sequential', 9), ('0', 'Linear', 9), ('1', 'ReLU', 0)])
    """
    counted: dict[int, int] = {}  # id(module) -> parameters under it, each counted once

    def under(module: nn.Module) -> int:
        key = id(module)
        if key not in counted:
            counted[key] = sum(p.numel() for p in module.parameters())
        return counted[key]

    modules: list[dict[str, Any]] = []
    truncated = False
    for path, module in model.named_modules():
        if len(modules) >= max_modules:
            truncated = True
            break
        modules.append(
            {
                "path": path or "(model)",
                "type": type(module).__name__,
                "params": under(module),
                "depth": 0 if not path else path.count(".") + 1,
            }
        )
    return {"total_params": under(model), "modules": modules, "truncated": truncated}
