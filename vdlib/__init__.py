"""vdlib: reproducible video diffusion from your own videos."""

__version__ = "0.1.0"
