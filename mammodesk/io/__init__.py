"""Reading mammograms into `Image` objects."""

from mammodesk.io.dicom import read_dicom, sniff_dicom
from mammodesk.io.image import Image, ImageMeta, WindowPreset
from mammodesk.io.netpbm import read_pgm, sniff_pgm
from mammodesk.io.raster import read_raster, sniff_raster
from mammodesk.io.registry import Reader, find_reader, read_image, readers, register_reader
from mammodesk.io.voi import apply_window

register_reader(Reader("dicom", "DICOM", sniff_dicom, read_dicom))
register_reader(Reader("pgm", "Netpbm PGM", sniff_pgm, read_pgm))
register_reader(Reader("raster", "PNG/TIFF/JPEG", sniff_raster, read_raster))

# What a folder listing and the Open dialog offer (readers recognise files from their content; DICOM files
# often have no extension): the one list of image suffixes.
SUPPORTED_SUFFIXES = (".dcm", ".dicom", ".dic", ".pgm", ".pnm", ".png", ".tif", ".tiff", ".jpg", ".jpeg", "")

__all__ = [
    "Image", "ImageMeta", "WindowPreset", "Reader", "apply_window", "find_reader",
    "read_image", "readers", "register_reader", "SUPPORTED_SUFFIXES",
]
