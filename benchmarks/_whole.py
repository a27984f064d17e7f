"""A network behind a module that reduced-precision inference does not split (for comparisons)."""

from __future__ import annotations

from typing import Any


def whole_network(model: Any) -> Any:
    """``model`` behind a module without ``forward_features`` / ``forward_head``.

    The backends run such a module entirely in the requested precision, where they would
    otherwise keep the output layer in float32 (:func:`hecktorseg.models.split_output_head`).
    """
    import torch

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.in_channels = model.in_channels

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.inner(x)
            return out

    return Whole().eval()
