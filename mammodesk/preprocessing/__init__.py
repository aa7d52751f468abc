"""Pure preprocessing ops in a registry, and the versioned pipeline spec that runs them."""

from mammodesk.preprocessing import filters, intensity, spatial  # noqa: F401  (registers the ops)
from mammodesk.preprocessing.geometry import Geometry
from mammodesk.preprocessing.registry import OPS, Frame, Op, Param, get_op, register_op
from mammodesk.preprocessing.spatial import breast_mask, chest_wall_side
from mammodesk.preprocessing.spec import (
    SPEC_VERSION, OpSpec, PipelineSpec, ProcessedImage, crop_frame, initial_frame,
)

__all__ = [
    "OPS", "SPEC_VERSION", "Frame", "Geometry", "Op", "OpSpec", "Param", "PipelineSpec",
    "ProcessedImage", "breast_mask", "chest_wall_side", "crop_frame", "get_op", "initial_frame", "register_op",
]
