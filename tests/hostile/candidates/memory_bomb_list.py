def solve(xs):
    hog = []
    while True:
        hog.append(bytearray(16 << 20))
