"""edgeact: int8 edge deployment for models with saturating and smooth activations."""
__version__ = "0.1.0"
