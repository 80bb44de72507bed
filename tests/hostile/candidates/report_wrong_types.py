def report():
    return {"score": "very high", "valid": "yes", "metrics": [1, 2], "feedback": 7}
