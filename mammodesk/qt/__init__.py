"""The Qt layer: the only part of MammoDesk that imports PySide6 or pyqtgraph."""
