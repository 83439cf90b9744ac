"""`python -m kvcap ...` is `kvcap ...` (and `accelerate launch ... -m kvcap train ...` works)."""

from kvcap.cli import main

if __name__ == "__main__":
    main(prog_name="kvcap")
