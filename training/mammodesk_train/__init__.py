"""mammodesk-train: training, honest evaluation and ONNX export of MammoDesk models.

Imports torch; the desktop app never imports this package."""

__version__ = "0.1.0"
