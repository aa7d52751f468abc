"""MammoDesk: reading, labelling and AI-assisted diagnosis of mammograms."""

__version__ = "0.1.0"
