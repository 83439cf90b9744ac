"""kvcap: Korean captions for folders of videos with a LLaVA-style vision-language model."""

__version__ = "0.1.0"
