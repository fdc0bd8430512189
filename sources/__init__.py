"""Per-source extractors, one module each; `pipeline.running.registry` names them."""
