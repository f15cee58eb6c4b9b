import sys

from deepnotes.cli import main

sys.exit(main())
