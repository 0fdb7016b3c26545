"""`harness data`: build, verify and download datasets (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build, verify and download datasets (not implemented yet)")
    parser.set_defaults(handler=not_implemented("data", "the data layer is not built yet"))
