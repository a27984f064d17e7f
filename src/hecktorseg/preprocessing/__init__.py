"""hecktorseg.preprocessing (under construction)."""

__all__: list[str] = []
