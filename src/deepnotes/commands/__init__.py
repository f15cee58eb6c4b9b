"""Sub-commands of ``deepnotes``: each module defines ``register(subparsers)``."""
