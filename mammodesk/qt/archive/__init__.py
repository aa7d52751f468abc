"""The DICOM archive in the window: the Worklist panel, its controller, the servers dialog."""
