"""Baseline: round robin (request i goes to instance i mod N), no migration."""


def dispatch(request, instances):
    return request.id % len(instances)
