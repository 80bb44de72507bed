import os


def report():
    os._exit(3)
