"""Services the app's state and windows use, Qt-free and holding no user-visible state of their own:
decoding files in worker processes (`loading`), writing labels in the background (`autosave`), reading
and writing label files (`label_io`), and the DICOM server session (`archive_session`). They import the
core only, never `mammodesk.state` (an import contract keeps it so)."""
