"""Scrubbing: detectors, the engine, and the pipeline stage (import the submodules)."""
