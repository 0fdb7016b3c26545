"""`harness ci`: the gate a pull request to the challenge's repository passes through.

It compares --head with the point where it forked from --base (git, no work tree needed), judges the
layout (one new folder under records/<track>/, nothing else touched, no weights, shards or large
files), and runs the full static `check` of that folder, against the main track's current record for a
record. `--local` is for submitters: HEAD against the upstream branch it forked from. In GitHub Actions
(GITHUB_ACTIONS=true, or --github) it also prints annotations, appends the Markdown report to
$GITHUB_STEP_SUMMARY and writes verdict.json / verdict.md to --out (default: the current folder).

Exit codes: 0 no check failed, 1 a check failed, 2 usage error or unreadable input (a bad revision).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from harness import pipeline
from harness.check.repository import GitRepo
from harness.cli import github
from harness.cli.arguments import add_policy_argument
from harness.cli.output import add_output_arguments, emit_verdict
from harness.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ci", help="the pull-request gate: layout of the changes, then `check` of the folder they add",
        description="Judge what a pull request changes (one new folder under records/<track>/ and nothing "
                    "else) and check that folder statically. Runs no code of the submission.",
    )
    parser.add_argument("--base", metavar="REF", help="the branch or commit the pull request goes into; its changes "
                        "are those since head forked from it")
    parser.add_argument("--head", metavar="REF", default="HEAD", help="the pull request's commit (default HEAD)")
    parser.add_argument("--repo", metavar="PATH", default=".", help="the repository (default: the current folder)")
    add_policy_argument(parser)
    parser.add_argument("--current-record", metavar="DIR",
                        help="the record to compare a record with: a folder on disk, or one of the repository at "
                             "base (default: the newest folder of records/track_10min_16mb/ by its date)")
    parser.add_argument("--local", action="store_true",
                        help="before opening the pull request: compare HEAD with the upstream branch it forked from "
                             "(@{upstream}, else origin/main; one that already holds HEAD is skipped)")
    parser.add_argument("--github", action="store_true",
                        help="GitHub Actions output (the default when GITHUB_ACTIONS=true): annotations, the step "
                             "summary, verdict.json and verdict.md")
    parser.add_argument("--out", metavar="DIR", help="write verdict.json and verdict.md there (in GitHub Actions they "
                        "go to the current folder unless --out says where)")
    add_output_arguments(parser)
    parser.set_defaults(handler=run)


def revisions(args: argparse.Namespace) -> tuple[str, str]:
    """(base, head) as the user asked: --base/--head, or with --local HEAD and its upstream."""
    if args.local:
        if args.base is not None or args.head != "HEAD":
            raise UserError("--local compares HEAD with its upstream branch: give either --local or --base/--head")
        base = GitRepo(args.repo).upstream()
        Console(stderr=True).print(f"ci --local: HEAD against {base} (committed changes only)", highlight=False)
        return base, "HEAD"
    if args.base is None:
        raise UserError("give --base REF (the branch the pull request goes into), or --local")
    return args.base, args.head


def run(args: argparse.Namespace) -> int:
    base, head = revisions(args)
    verdict = pipeline.ci(args.repo, base, head, args.current_record, args.policy)
    code = emit_verdict(verdict, args)
    if args.github or github.in_github_actions():
        for line in github.annotations(verdict):
            print(line)
        github.publish(verdict, Path(args.out or "."), os.environ.get("GITHUB_STEP_SUMMARY"))
    elif args.out:
        github.write_verdict(verdict, Path(args.out))
    return code
