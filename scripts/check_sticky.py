"""Check that a proxy in front of several backends keeps each page's websocket sticky.

    python scripts/check_sticky.py http://127.0.0.1:8080 http://127.0.0.1:5011 http://127.0.0.1:5012

Opens N pages through the proxy (GET, then the session's websocket with the page's cookies)
and counts the sessions on every backend (their /health): a websocket routed to another
backend than the one that built its page makes a second session there, so the total must
equal N. Run it on an otherwise idle set of backends. Exit status 1 when it does not.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from app_load_client import load_model_types, open_session


def sessions(backend: str) -> int:
    with urllib.request.urlopen(backend + "/health", timeout=30) as r:
        return json.loads(r.read())["sessions"]


def main(proxy: str, backends: list[str], pages=("numbers", "galaxies", "physics") * 2) -> int:
    load_model_types()
    before = {b: sessions(b) for b in backends}
    opened = []
    for page in pages:
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        html = opener.open(f"{proxy}/{page}", timeout=300).read().decode()
        opened.append(open_session(proxy, page, html, jar, 300))
        print(page, [f"{c.name}={c.value} (path {c.path})" for c in jar], flush=True)
    time.sleep(1)
    after = {b: sessions(b) for b in backends}
    for s in opened:
        s.close()
    made = sum(after.values()) - sum(before.values())
    print(f"sessions per backend before {before}, with {len(pages)} pages open {after}")
    print("sticky" if made == len(pages) else f"NOT sticky: {made} sessions for {len(pages)}")
    return 0 if made == len(pages) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
