"""``python -m renkei.cloud.ingest [OPTIONS]``: the same as ``renkei cloud ingest [OPTIONS]``."""

from __future__ import annotations

import typer

from renkei.cloud.cli import ingest

main = typer.Typer(pretty_exceptions_show_locals=False)
main.command()(ingest)

if __name__ == "__main__":
    main()
