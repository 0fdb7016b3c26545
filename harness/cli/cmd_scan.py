"""`harness scan`: static compliance scan of a submission's code (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser("scan", help="static compliance scan of a submission's code (not implemented yet)")
    parser.set_defaults(handler=not_implemented("scan", "the compliance scanner is not built yet"))
