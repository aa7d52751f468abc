"""Everything training takes from the app, in one place: what a model file must carry (the contract), the
images, views and labels it reads, the preprocessing it shares with the app, the breast anatomy and the
engine that `evaluate` and `explain` run. No other module of `mammodesk_train` imports `mammodesk`
(an import contract in pyproject.toml keeps it so), so this list is the whole surface the two share."""

# ruff: noqa: F401
from mammodesk import __version__ as APP_VERSION
from mammodesk.anatomy import read_anatomy
from mammodesk.annotations import (Finding, FindingKind, ImageLabels, MaskRef, Pathology, read_cbis_csv,
                                   read_inbreast_sheet, read_inbreast_xml)
from mammodesk.annotations.exports import read_csv
from mammodesk.annotations.mias import read_mias_info
from mammodesk.annotations.model import Rect
from mammodesk.annotations.serialize import labels_from_dict
from mammodesk.annotations.sidecar import SCHEMA as SIDECAR_SCHEMA, SUFFIX as SIDECAR_SUFFIX
from mammodesk.errors import ImageReadError, LabelReadError, UnsupportedFormatError, did_you_mean
from mammodesk.inference import CamOutput, InputLayout, ModelRunner, RoiMode, build_metadata
from mammodesk.inference.batch import duration
from mammodesk.inference.bilateral import Bilateral
from mammodesk.inference.calibration import apply_calibration, describe as describe_calibration, logit
from mammodesk.inference.domain import (EmbeddingModel, check as check_domain, input_ranges, input_statistics,
                                        summarise_acquisition)
from mammodesk.inference.levels import ABNORMAL, NORMAL, UNCLEAR, ExamRule, Level
from mammodesk.inference.location import LOCATION_MM, location_cells, peak_centre, tissue_cells
from mammodesk.inference.modes.image import BREAST_CELL
from mammodesk.inference.onnx_meta import graph_sha256
from mammodesk.inference.patches import cut_patches, patch_positions
from mammodesk.inference.scan import scan as scan_breast
from mammodesk.inference.spacing import with_assumed_spacing
from mammodesk.io import Image, ImageMeta, find_format, read_image
from mammodesk.io.decoding import decode_all
from mammodesk.io.naming import hashed_key, infer_from_name, without_side_and_view
from mammodesk.io.views import VIEW_FAMILY, VIEWS
from mammodesk.preprocessing import PipelineSpec, breast_mask, crop_frame
from mammodesk.preprocessing.geometry import Geometry
from mammodesk.preprocessing.intensity import value_range
from mammodesk.preprocessing.registry import Frame
from mammodesk.preprocessing.spatial import outline_breast
from mammodesk.resources import resources_dir
from mammodesk.storage import data_dir, write_atomic, write_atomic_with
