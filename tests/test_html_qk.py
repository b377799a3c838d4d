"""The page's query/key view (--qk): q and k kept at capture, saved and loaded, and the softmax they give.

The check that matters: softmax(q·k·scaling + mask) computed from the page's own data reproduces the weights the
model computed (tiny BERT, within 1e-5), in Python and in the browser; where it does not, the page says so.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from attncli.capture import Selection
from attncli.views.interactive import interactive_view
from attncli.views.qk import bare_softmax, decode

TEXT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def qk_capture(tiny_bert):
    from attncli.families.text_capture import capture_text
    from attncli.models import load_model

    return capture_text(TEXT, load_model(str(tiny_bert)), Selection(qk=True))


def test_capture_keeps_query_and_key_and_they_give_the_weights(qk_capture):
    cap = qk_capture
    L, H, N = cap.attentions.shape[:3]
    assert cap.extras["query"].shape[:3] == (L, H, N) == cap.extras["key"].shape[:3]
    assert cap.extras["query"].dtype == np.float32 and cap.extras["scaling"].shape == (L,)
    d = cap.extras["query"].shape[-1]
    np.testing.assert_allclose(cap.extras["scaling"], d ** -0.5, rtol=1e-6)  # BERT's 1/sqrt(d)
    for layer in range(L):
        got = bare_softmax(cap.extras["query"][layer], cap.extras["key"][layer], cap.extras["scaling"][layer],
                           cap.extras["allowed"])
        assert np.abs(got - cap.attentions[layer]).max() <= 1e-5


def test_without_qk_nothing_extra_is_kept(tiny_bert):
    from attncli.families.text_capture import capture_text
    from attncli.models import load_model

    assert capture_text(TEXT, load_model(str(tiny_bert))).extras == {}


def test_extras_are_saved_and_loaded_and_old_captures_still_load(qk_capture, tmp_path):
    from attncli.store import load_capture, save_capture

    back = load_capture(save_capture(qk_capture, tmp_path / "qk.npz"))
    assert sorted(back.extras) == ["allowed", "key", "query", "scaling"]
    for name, value in qk_capture.extras.items():
        np.testing.assert_array_equal(back.extras[name], value)
    import dataclasses

    plain = load_capture(save_capture(dataclasses.replace(qk_capture, extras={}), tmp_path / "plain.npz"))
    assert plain.extras == {}


def test_page_data_reproduces_the_captured_weights(qk_capture):
    view = interactive_view(qk_capture, qk=True)
    data = view.qk
    assert data is not None and data["layers"] == view.layers and max(data["check"]) <= 1e-5
    for slot, layer in enumerate(data["layers"]):
        q, k, allowed = decode(data, slot)
        np.testing.assert_array_equal(q, qk_capture.extras["query"][layer])  # exact, float32
        got = bare_softmax(q, k, data["scaling"][slot], allowed)
        assert np.abs(got - qk_capture.attentions[layer]).max() <= 1e-5
    json.dumps(view.to_dict())  # JSON-ready


def test_a_model_with_extra_score_terms_is_named_not_shown(qk_capture):
    import dataclasses

    cap = dataclasses.replace(qk_capture, arch=dict(qk_capture.arch, model_type="t5"),
                              extras=dict(qk_capture.extras, scaling=qk_capture.extras["scaling"] * 2))
    data = interactive_view(cap, qk=True).qk
    assert min(data["check"]) > 1e-3 and data["terms"] == "a relative position bias"


def test_qk_left_out_when_too_big_and_said(qk_capture):
    view = interactive_view(qk_capture, qk=True, max_bytes=interactive_view(qk_capture).nbytes + 10)
    assert view.qk is None and any("left out of the page" in w for w in view.warnings)
    no_qk = interactive_view(qk_capture)
    assert no_qk.qk is None and "qk" not in json.dumps(no_qk.warnings)


def test_cli_qk_needs_a_page_and_writes_it(cli, tiny_bert, tmp_path):
    code, out, err = cli("explain", TEXT, "--model", str(tiny_bert), "--qk")
    assert code != 0 and "-o FILE.html" in err
    page = tmp_path / "qk.html"
    code, out, err = cli("explain", TEXT, "--model", str(tiny_bert), "--qk", "-o", str(page))
    assert code == 0, err
    data = json.loads(page.read_text().split('<script id="attn-data" type="application/json">', 1)[1]
                      .split("</script>", 1)[0])
    assert data["qk"]["layers"] == [0, 1] and max(data["qk"]["check"]) <= 1e-5
    code, out, err = cli("heatmap", "--text", TEXT, "--model", str(tiny_bert), "--qk", "-o", str(page))
    assert code == 0, err
    assert '"qk":{"layers":[0,1]' in page.read_text()
    code, out, err = cli("heatmap", "--text", TEXT, "--model", str(tiny_bert), "--qk")
    assert code != 0 and "-o FILE.html" in err


def test_page_panel_softmax_equals_the_captured_weights(qk_capture, tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_html_browser import Page, chromium_path

    if chromium_path() is None:
        pytest.skip("no Chromium executable found")
    from playwright.sync_api import sync_playwright

    from attncli.render.html import write_html
    from test_html_browser import ARGS

    view = interactive_view(qk_capture, qk=True)
    path = write_html(view, tmp_path / "qk.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        page = Page(browser, path)
        pg = page.page
        assert "pick one head" in pg.inner_text("#qk-note")
        pg.select_option("#head", "1")
        pg.click("#qcol li[data-index='2']")
        st = page.status()
        layer, query = int(st["layer"]), int(st["query"])
        rows = pg.eval_on_selector_all("#qk tbody tr", "rs => rs.map(r => Object.assign({}, r.dataset))")
        assert len(rows) == qk_capture.n_tokens and pg.eval_on_selector("#qk-note", "e => e.dataset.ok") == "1"
        want = qk_capture.attentions[layer, 1, query]
        got = np.array([float(r["softmax"]) for r in rows])
        assert np.abs(got - want).max() <= 1e-5
        scores = qk_capture.extras["query"][layer, 1, query].astype(np.float64) @ \
            qk_capture.extras["key"][layer, 1].astype(np.float64).T
        np.testing.assert_allclose([float(r["score"]) for r in rows], scores, rtol=1e-5, atol=1e-6)
        pg.select_option("#layer", "0")
        assert int(pg.eval_on_selector("#qk-box", "e => e.dataset.layer")) == 0
        assert "k = " in pg.inner_text("#qk-key") and page.errors == []
        page.context.close()
        # a model whose scores have more terms than q·k·scaling: named, and no softmax of the bare products
        import dataclasses

        odd = dataclasses.replace(qk_capture, arch=dict(qk_capture.arch, model_type="t5"),
                                  extras=dict(qk_capture.extras, scaling=qk_capture.extras["scaling"] * 2))
        page = Page(browser, write_html(interactive_view(odd, qk=True), tmp_path / "odd.html"))
        page.page.select_option("#head", "0")
        assert page.page.eval_on_selector("#qk-note", "e => e.dataset.ok") == "0"
        assert "relative position bias" in page.page.inner_text("#qk-note")
        rows = page.page.eval_on_selector_all("#qk tbody tr", "rs => rs.map(r => r.dataset.softmax)")
        assert rows and set(rows) == {""} and page.errors == []
        page.context.close()
        browser.close()


@pytest.mark.parametrize("maker", ["make_gpt2", "make_llama"])
def test_causal_models_rope_and_grouped_keys_give_their_weights(cli, maker, tmp_path):
    """GPT-2 (causal mask) and Llama (RoPE, 4 query heads over 2 KV heads): the page's q/k give the weights."""
    import tiny

    model = getattr(tiny, maker)(tmp_path / maker)
    page, npz = tmp_path / "page.html", tmp_path / "c.npz"
    code, out, err = cli("explain", TEXT, "--model", str(model), "--qk", "-o", str(page), "--save", str(npz))
    assert code == 0, err
    from attncli.store import load_capture

    cap = load_capture(npz)
    data = json.loads(page.read_text().split('<script id="attn-data" type="application/json">', 1)[1]
                      .split("</script>", 1)[0])["qk"]
    assert max(data["check"]) <= 1e-5
    for slot, layer in enumerate(data["layers"]):
        q, k, allowed = decode(data, slot)
        assert q.shape[0] == cap.attentions.shape[1]  # every query head has its (repeated) key
        assert allowed[0, 1] == 0 and allowed[1, 0] == 1  # causal
        assert np.abs(bare_softmax(q, k, data["scaling"][slot], allowed) - cap.attentions[layer]).max() <= 1e-5
