"""mammodesk-train: training, honest evaluation and ONNX export of MammoDesk models.

Imports torch; the desktop app never imports this package."""

__version__ = "0.2.0"  # 0.2: the reader's heads fitted together on the cells a loss sees (other figures)
