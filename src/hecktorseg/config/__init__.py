"""Configuration machinery shared by every stage: attrs classes ↔ plain dicts ↔ YAML.

The configuration classes themselves live with their stage
(:class:`hecktorseg.preprocessing.PreprocessConfig`,
:class:`hecktorseg.training.TrainConfig`, …); this module gives them strict
loading (unknown keys and wrong types are errors naming the field), saving and
merging of overrides.
"""

from hecktorseg.config._base import (
    config_fields,
    from_dict,
    help_text,
    load_yaml,
    merge,
    save_yaml,
    to_dict,
)

__all__ = [
    "config_fields",
    "from_dict",
    "help_text",
    "load_yaml",
    "merge",
    "save_yaml",
    "to_dict",
]
