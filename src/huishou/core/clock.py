"""The borrower's local time: the one conversion from the lender's clock (every timestamp in a book is the
lender's local time) to each borrower's own zone, used by the simulator, the planner and the workbench."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd


def local_minutes(times: pd.Series, zones: pd.Series, lender_zone: str) -> np.ndarray:
    """Minute of the day in each borrower's own zone (a missing zone: the lender's), for naive timestamps on
    the lender's clock; NaN where the lender's clock skips or repeats the time (a DST change)."""
    stamped = pd.DatetimeIndex(pd.to_datetime(times)).tz_localize(lender_zone, ambiguous="NaT", nonexistent="NaT")
    zones = zones.fillna(lender_zone).to_numpy()
    out = np.full(len(times), np.nan)
    for zone in pd.unique(zones):
        rows = zones == zone
        local = stamped[rows].tz_convert(zone)
        out[rows] = local.hour * 60 + local.minute
    return out


def local_hours(times: pd.Series, zones: pd.Series, lender_zone: str) -> np.ndarray:
    """Hour of the day (fractional: 13.5 is half past one) in each borrower's zone; see local_minutes."""
    minutes = local_minutes(times, zones, lender_zone)
    return minutes // 60 + (minutes % 60) / 60


def minute_now(now: dt.datetime, zone: str) -> int:
    """Minutes since midnight at the aware instant `now` in the borrower's zone."""
    local = now.astimezone(ZoneInfo(zone))
    return local.hour * 60 + local.minute


def offset_minutes(zones: pd.Series, times: pd.Series, lender_zone: str) -> np.ndarray:
    """Minutes the borrower's local time runs ahead of the lender's on the decision day (0: same zone)."""
    lender = ZoneInfo(lender_zone)
    keys = pd.DataFrame({"zone": zones.fillna(lender_zone).to_numpy(), "day": pd.to_datetime(times).dt.normalize()})

    def offset(zone: str, day: pd.Timestamp) -> float:
        moment = dt.datetime(day.year, day.month, day.day, 12)
        return (
            moment.replace(tzinfo=ZoneInfo(zone)).utcoffset() - moment.replace(tzinfo=lender).utcoffset()
        ).total_seconds() / 60

    pairs = keys.drop_duplicates()
    pairs["offset"] = [offset(z, d) for z, d in zip(pairs["zone"], pairs["day"], strict=True)]
    return keys.merge(pairs, on=["zone", "day"], how="left")["offset"].to_numpy(dtype=float)
