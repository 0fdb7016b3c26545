"""`harness ci`: the gate pull requests pass through (not built yet)."""

from harness.cli.not_implemented import not_implemented


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ci", help="check every submission folder a pull request adds or changes (not implemented yet)",
        description="Run `check` on every submission folder that a pull request adds or changes and fail "
                    "the gate on any failed check.",
    )
    parser.add_argument("--base", default="origin/main", help="git revision the pull request is compared with")
    parser.set_defaults(handler=not_implemented(
        "ci", "the pull-request gate is not built yet; run `harness check DIR` on each changed folder"))
