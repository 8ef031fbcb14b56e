"""One router per resource; :data:`ROUTERS` is the order they are mounted in."""

from fastapi import APIRouter

from renkei.cloud.api.routers import (
    assignments,
    audit,
    bookings,
    capacity,
    credentials,
    disruptions,
    drills,
    firms,
    gateway_enrolment,
    gateways,
    me,
    models,
    notifications,
    oee_counts,
    policies,
    regions,
    registry,
    registry_files,
    takeovers,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    me.router,
    firms.router,
    credentials.router,
    registry.router,
    registry_files.router,
    bookings.router,
    capacity.router,
    policies.router,
    audit.router,
    gateways.router,
    gateway_enrolment.router,
    disruptions.router,
    takeovers.router,
    drills.router,
    assignments.router,
    regions.router,
    models.router,
    notifications.router,
    oee_counts.router,
)
