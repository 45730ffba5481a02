"""snnzoo: searched, trained, fast spiking neural networks, shared the way timm models are."""

__version__ = "0.1.0"

from .models import create_model, list_models, list_pretrained, load_variants  # noqa: E402
from .nir_exchange import export_nir, import_nir  # noqa: E402

__all__ = ["create_model", "export_nir", "import_nir", "list_models", "list_pretrained",
           "load_variants", "__version__"]
