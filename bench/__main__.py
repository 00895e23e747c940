"""`python -m bench`: load Greenlight and the bare FastAPI app side by side (bench/README.md)."""

import sys

from bench.harness import main

if __name__ == "__main__":
    sys.exit(main())
