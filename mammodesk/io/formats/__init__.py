"""The image formats MammoDesk reads, one module each. A module registers its `ImageFormat` (name, what it
reads, the file suffixes it is usually found under, `sniff` on the first bytes, `read`) with
`register_format`; every module here is imported below, in name order, so a new format is one file.
Files are recognised by their content: the suffixes only say what a folder listing and the Open dialog
offer."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
