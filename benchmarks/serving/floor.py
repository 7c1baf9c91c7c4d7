"""The floor: a bare FastAPI endpoint that calls the LightGBM booster directly on the
JSON row (no auth, no checks, no capture). ``FLOOR_MODEL=floor.txt uvicorn ...``"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightgbm as lgb
import numpy as np
from fastapi import FastAPI, Request

booster = lgb.Booster(model_file=os.environ["FLOOR_MODEL"])
columns = json.loads(Path(os.environ["FLOOR_COLUMNS"]).read_text())
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> dict:
    rows = json.loads(await request.body())
    x = np.array([[row.get(c, np.nan) for c in columns] for row in rows], dtype=float)
    p = booster.predict(x)
    return {"predictions": [{"probability": float(v)} for v in p]}
