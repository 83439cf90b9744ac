"""The `kvcap tui` Textual app (kvcap.tui.app) over a textual-free file reader (kvcap.tui.runfiles)."""
