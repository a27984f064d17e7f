"""hecktorseg.training (under construction)."""

__all__: list[str] = []
