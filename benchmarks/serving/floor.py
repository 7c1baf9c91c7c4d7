"""The floors: bare FastAPI endpoints with no auth, checks or capture.

``/predict`` calls the LightGBM booster directly on the JSON row; ``/predict_frame`` builds
a DataFrame and calls the scikit-learn wrapper (the floor the serving issue measured).
``FLOOR_MODEL=floor.txt FLOOR_PICKLE=floor.pkl FLOOR_COLUMNS=columns.json uvicorn ...``
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from fastapi import FastAPI, Request

booster = lgb.Booster(model_file=os.environ["FLOOR_MODEL"])
classifier = pickle.loads(Path(os.environ["FLOOR_PICKLE"]).read_bytes())
columns = json.loads(Path(os.environ["FLOOR_COLUMNS"]).read_text())
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> dict:
    rows = json.loads(await request.body())
    x = np.array([[row.get(c, np.nan) for c in columns] for row in rows], dtype=float)
    p = booster.predict(x)
    return {"predictions": [{"probability": float(v)} for v in p]}


@app.post("/predict_frame")
async def predict_frame(request: Request) -> dict:
    frame = pd.DataFrame(json.loads(await request.body()), columns=columns)
    p = classifier.predict_proba(frame)[:, 1]
    return {"predictions": [{"probability": float(v)} for v in p]}
