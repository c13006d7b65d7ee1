"""Liveness: the API answers (it does not ask Temporal)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()
