"""The `kvcap tui` Textual app (kvcap.tui.app) over textual-free file readers (kvcap.tui.runfiles, kvcap.tui.jobfiles)."""
