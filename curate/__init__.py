"""curate: reshape synthetic image-quality datasets into training manifests (SynDR-IQA)."""

__version__ = "0.1.0"
