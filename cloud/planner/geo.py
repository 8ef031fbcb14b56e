"""Great-circle distance (haversine) on a spherical Earth.

Source: R. W. Sinnott, "Virtues of the Haversine", Sky and Telescope 68(2), 1984; Earth
radius = IUGG mean radius R1 = 6371.0088 km. The spherical model errs by < 0.5 % against
the WGS 84 ellipsoid, far below the difference between straight-line and road distance,
which this module does not model (transport distance in the plan is straight-line km).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "haversine_km_array"]

#: IUGG mean Earth radius R1, km.
EARTH_RADIUS_KM = 6371.0088


def haversine_km_array(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle distances in km between points given in degrees (numpy broadcasting).

    Args:
        lat1_deg, lon1_deg, lat2_deg, lon2_deg: latitudes/longitudes in decimal degrees;
            any shapes that broadcast together.

    Returns:
        Distances in km, shape of the broadcast inputs, float64.
    """
    lat1 = np.radians(np.asarray(lat1_deg, dtype=np.float64))
    lat2 = np.radians(np.asarray(lat2_deg, dtype=np.float64))
    dlat = lat2 - lat1
    dlon = np.radians(np.asarray(lon2_deg, dtype=np.float64)) - np.radians(
        np.asarray(lon1_deg, dtype=np.float64)
    )
    a = np.sin(dlat / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlon / 2.0) ** 2
    out: NDArray[np.float64] = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def haversine_km(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance in km between two points in degrees.

    Computed by :func:`haversine_km_array`, so scalar and vectorised results are identical.
    """
    return float(haversine_km_array(lat1_deg, lon1_deg, lat2_deg, lon2_deg))
