import numpy as np


def solve(xs):
    hog = []
    while True:
        hog.append(np.ones(2 << 20))  # 16 MB each, touched
