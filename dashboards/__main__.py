"""``python -m dashboards [build|check|push|verify]`` (default: build)."""

from renkei.dashboards.cli import app

app(prog_name="python -m dashboards")
