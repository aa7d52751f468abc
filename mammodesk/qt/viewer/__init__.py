"""The reading room's views: canvas, the hanging of views, the study browser, metadata, preprocessing."""
