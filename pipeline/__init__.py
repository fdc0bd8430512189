"""corpusforge pipeline: CLI, config, the Ray stage runner, shard I/O, tokenization and manifests."""

__version__ = "0.1.0"

# The composition root: wire the plug-in registry into the core, so that a stage config built on its
# own (`LanguageIdConfig()`, `corpus langid` without --config) carries the per-source defaults the
# registered sources declare (`Extractor.stage_defaults`). The core itself imports nothing above it.
from pipeline.running import registry as _registry  # noqa: E402, F401
