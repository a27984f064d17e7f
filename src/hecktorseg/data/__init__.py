"""hecktorseg.data (under construction)."""

__all__: list[str] = []
