"""Typed configuration: ``kvcap.toml`` + CLI overrides, validated with key names.

Every field carries an attribute docstring (the string literal under it); ``kvcap config show``
prints them as comments. Constraints sit on the fields too (``Literal``, ``Annotated[.., Range]``).
Loading never imports torch.

Settings come in layers: built-in defaults < the checkpoint's own (frames, prompt, generation)
< kvcap.toml / --config < --set < command flags. ``Config.provenance`` records which layer set
each key; ``cfg.explicit_keys()`` are the ones the user set.

Errors are :class:`ConfigError`, whose message is one line naming the file, the key and (where
it can be found) the line, e.g. ``kvcap.toml:12: train.stage1.lr: expected a number, got 'x'``.

The package: `schema` (the dataclasses), `fields` (their fields, annotations and docs read back), `constraints` (choices, ranges,
value checks), `layers` (provenance, `--set`, `apply_layer`), `toml_io` (kvcap.toml in and out).
Import from `kvcap.config`.
"""

from kvcap.config.constraints import (
    AUTO,
    CLS_CHOICES,
    PROJECTOR_NAMES,
    QUANTIZATIONS,
    USE_CHECKPOINT,
    CaptionFormat,
    CaptionQuantization,
    ConfigError,
    Device,
    Metric,
    ProjectorName,
    Quantization,
    Range,
    VisionCls,
    quantization_override,
)
from kvcap.config.fields import INTERNAL_FIELDS, field_docs
from kvcap.config.layers import (
    apply_layer,
    apply_overrides,
    config_from_dict,
    get_value,
    parse_override,
    setting_type,
    with_checkpoint,
)
from kvcap.config.schema import (
    CHECKPOINT_LAYER,
    DEFAULT_LAYER,
    FILE_RANK,
    FLAG_LAYER,
    SET_LAYER,
    CaptionConfig,
    Config,
    DataConfig,
    GenerationConfig,
    LoraConfig,
    ModelConfig,
    ProjectorConfig,
    RayConfig,
    ScoreConfig,
    StageConfig,
    SubtitleConfig,
    TrainConfig,
    VideoConfig,
    layer_rank,
)
from kvcap.config.toml_io import (
    DEFAULT_CONFIG_NAME,
    commented_toml,
    config_to_dict,
    config_to_toml,
    load_config,
)

__all__ = [
    "AUTO", "CHECKPOINT_LAYER", "CLS_CHOICES", "DEFAULT_CONFIG_NAME", "DEFAULT_LAYER", "FILE_RANK",
    "FLAG_LAYER", "INTERNAL_FIELDS", "PROJECTOR_NAMES", "QUANTIZATIONS", "SET_LAYER", "USE_CHECKPOINT",
    "CaptionConfig", "CaptionFormat", "CaptionQuantization", "Config", "ConfigError", "DataConfig",
    "Device", "GenerationConfig", "LoraConfig", "Metric", "ModelConfig", "ProjectorConfig",
    "ProjectorName", "Quantization", "Range", "RayConfig", "ScoreConfig", "StageConfig", "SubtitleConfig",
    "TrainConfig",
    "VideoConfig", "VisionCls", "apply_layer", "apply_overrides", "commented_toml", "config_from_dict",
    "config_to_dict", "config_to_toml", "field_docs", "get_value", "layer_rank", "load_config",
    "parse_override", "quantization_override", "setting_type", "with_checkpoint",
]
