"""snnzoo: searched, trained, fast spiking neural networks, shared the way timm models are."""

__version__ = "0.1.0"
