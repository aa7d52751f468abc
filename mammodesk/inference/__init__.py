"""Running exported models: the ONNX contract, the engine, the model library."""

from mammodesk.inference.contract import (
    CONTRACT_VERSION, CamOutput, InputLayout, ModelCard, ModelContractError, RoiMode, build_metadata, read_card,
)
from mammodesk.inference.library import ModelEntry, ModelLibrary
from mammodesk.inference.results import HeatMaps, Prediction, SourceMap
from mammodesk.inference.runner import ModelInputError, ModelRunner

__all__ = [
    "CONTRACT_VERSION", "CamOutput", "HeatMaps", "InputLayout", "ModelCard", "ModelContractError", "ModelEntry",
    "ModelInputError", "ModelLibrary", "ModelRunner", "Prediction", "RoiMode", "SourceMap", "build_metadata",
    "read_card",
]
