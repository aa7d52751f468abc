"""Qt-free application state: every user action of the reading room is a
method here, so it can be tested and scripted without a window. Widgets in
`mammodesk.qt` subscribe to the signals and write back only through methods."""

from mammodesk.state.events import Signal
from mammodesk.state.pipeline_editor import PipelineEditor
from mammodesk.state.viewer import Document, LoadError, ViewerState

__all__ = ["Document", "LoadError", "PipelineEditor", "Signal", "ViewerState"]
