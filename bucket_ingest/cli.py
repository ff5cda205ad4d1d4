"""The `bucket-ingest` command: dev and ops tooling, never deployed with the functions.

Each subcommand lives in ``bucket_ingest.commands.<name>`` with ``add_arguments(parser)`` and
``run(args) -> int``, imported only when it runs so that `bucket-ingest map` stays quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "map": ("map", "print the payloads an event file maps to, and the skipped objects with reasons"),
    "invoke": ("invoke", "run a cloud's function on an event file the way its platform would"),
    "rows": ("rows", "list the rows a registry holds"),
    "doctor": ("doctor", "check a Labelbox configuration end to end"),
    "labelbox-endpoint": ("labelbox_endpoint", "serve a local Labelbox-compatible GraphQL endpoint"),
    "demo": ("demo", "run the ingester against emulated buckets of all three clouds"),
    "backfill": ("backfill", "register the objects already in a bucket, resumably"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bucket-ingest", description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"bucket_ingest.commands.{module_name}")
            module.add_arguments(command)
            command.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
