"""embedscope core: a typed plain-Python library for embedding, storing and analysing datasets."""

__version__ = "0.1.0"
