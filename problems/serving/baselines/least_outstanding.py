"""Baseline: least outstanding requests (running + waiting), lowest index on ties; no migration."""


def dispatch(request, instances):
    return min(range(len(instances)),
               key=lambda i: (instances[i].num_running + instances[i].num_waiting, i))
