"""Configuration machinery shared by every stage: attrs classes ↔ plain dicts ↔ YAML.

The configuration classes themselves live with their stage
(:class:`hecktorseg.preprocessing.PreprocessConfig`,
:class:`hecktorseg.training.TrainConfig`, …); this module gives them strict
loading (unknown keys and wrong types are errors naming the field), saving and
merging of overrides, and :func:`resolve_config` (preset → YAML → overrides), which
every command uses to build its settings.
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
from hecktorseg.config.resolve import resolve_config

__all__ = [
    "config_fields",
    "from_dict",
    "help_text",
    "load_yaml",
    "merge",
    "resolve_config",
    "save_yaml",
    "to_dict",
]
