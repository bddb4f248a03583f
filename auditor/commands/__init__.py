"""CLI subcommands: each module has `register(subparsers)`; every module here is loaded."""
