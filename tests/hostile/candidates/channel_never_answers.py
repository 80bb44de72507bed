import time


def report():
    while True:
        time.sleep(1)
