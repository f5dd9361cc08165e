"""A child-process memory probe shared by the bench scripts.

``script(body, repo)`` returns a ``python -c`` program: a thread samples the
process's anonymous memory (``RssAnon``: heap, not the page-cache pages of a
mapped model, which RSS also counts), then ``body`` runs and ends with
``report(**figures)``, which prints one JSON line: wall time, peak anonymous
memory, peak RSS and the figures.
"""

PRELUDE = '''
import json, resource, sys, threading, time
sys.path.insert(0, {repo!r})
from pathlib import Path
peak_anon = [0]
def poll():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]) // 1024)
        time.sleep(0.005)
threading.Thread(target=poll, daemon=True).start()
t0 = time.perf_counter()
def report(**figures):
    time.sleep(0.02)
    print(json.dumps({{"wall": time.perf_counter() - t0, "peak_anon_mib": peak_anon[0],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **figures}}))
'''


def script(body: str, repo: str) -> str:
    """The probe program running ``body`` (plain Python that calls ``report(...)`` at its end)."""
    return PRELUDE.format(repo=repo) + body
