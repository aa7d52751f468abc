"""ROI labelling in the window: controller, the Labels panel, the canvas editor and its ROI layer."""
