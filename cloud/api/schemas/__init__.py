"""Pydantic request and response bodies of the API, one module per router that has many
(:mod:`renkei.cloud.api.schemas.models`, :mod:`renkei.cloud.api.schemas.takeovers`); the
routers in :mod:`renkei.cloud.api.routers` stay thin: path, access rule, handler."""
