"""Every concept-card link (issue 13), followed one after another in ONE session, lands on the same
state as the same URL opened in a fresh session: selected segmented controls, selectboxes, title,
loaded model and URL query. (The 15 tour steps are walked in a real browser:
tests/browser/test_tour_state_browser.py.)"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures.apptest_util import APP, assert_ok
from ui.common import MODEL_KEY
from ui.learn_content import CARDS, PAGE_FILES

pytestmark = pytest.mark.slow


def _query(at: AppTest) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def _state(at: AppTest) -> dict:
    return {
        "segments": [w.value for w in at.segmented_control if w.key != "lang_switch"],
        "selects": [(w.key, w.value) for w in at.selectbox if w.key not in ("picker_choice", "llmviz_device")],
        "title": [e.value for e in at.title],
        "model": at.session_state[MODEL_KEY],
        "query": _query(at),
    }


def _go(at: AppTest, page: str, query: dict) -> None:
    for k in list(at.query_params):
        del at.query_params[k]
    for k, v in query.items():
        at.query_params[k] = v
    at.switch_page(PAGE_FILES[page])
    at.run()


def test_every_card_link_lands_like_a_fresh_open():
    links = list(dict.fromkeys((c.link.page, tuple(sorted(c.link.query().items()))) for c in CARDS.values()))
    walk = AppTest.from_file(str(APP), default_timeout=240)
    walk.run()
    wrong = []
    for page, query in links:
        _go(walk, page, dict(query))
        assert_ok(walk)
        walked = _state(walk)
        fresh = AppTest.from_file(str(APP), default_timeout=240)
        fresh.run()
        _go(fresh, page, walked["query"])
        assert_ok(fresh)
        if _state(fresh) != walked:
            wrong.append((page, query, walked, _state(fresh)))
    print({"card_links_landing": len(links) - len(wrong), "of": len(links)})
    assert not wrong, wrong
