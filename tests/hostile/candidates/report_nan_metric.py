def report():
    return {"score": 0.5, "valid": True, "metrics": {"ratio": float("nan")}, "feedback": "ok"}
