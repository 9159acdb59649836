"""Marked elements the page adds after the banner started, inside containers it adds: held back, then run once granted.

The banner looks only at what each change adds, so what sits deeper in an added container must be found too.
"""

from __future__ import annotations

ADD_CONTAINER = """tag => {
    const section = document.createElement('section');
    section.innerHTML = '<div><p>Related</p><div class="widget">' +
        '<script type="text/plain" data-cmp-purpose="analytics">window.nestedRuns = (window.nestedRuns || 0) + 1;' +
        '</scr' + 'ipt>' +
        '<img data-cmp-purpose="analytics" data-src="' + location.origin + '/pv.gif?tag=' + tag + '" alt="">' +
        '<iframe data-cmp-purpose="preferences" data-src="' + location.origin + '/video?' + tag + '" title="' + tag +
        '"></iframe></div></div>';
    document.querySelector('main').append(section);
}"""


def test_marked_elements_inside_an_added_container_wait_for_their_purpose(page, visit, pages):
    visit(page)
    page.evaluate(ADD_CONTAINER, "nested")
    frame = page.locator("iframe[title='nested']")
    frame.wait_for(state="hidden")
    assert frame.evaluate("f => f.previousElementSibling.className") == "cmp-placeholder"
    assert page.evaluate("() => window.nestedRuns") is None
    assert page.locator("img[data-src$='tag=nested']").get_attribute("src") is None

    with page.expect_response(f"{pages.origin}/pv.gif?tag=nested"):
        page.locator(".cmp-banner").get_by_role("button", name="Accept all").click()
    assert page.evaluate("() => window.nestedRuns") == 1
    assert frame.get_attribute("src") == f"{pages.origin}/video?nested"

    # Granted already: a container added now runs what it holds at once, and only once.
    with page.expect_response(f"{pages.origin}/pv.gif?tag=later"):
        page.evaluate(ADD_CONTAINER, "later")
    page.wait_for_function("() => window.nestedRuns === 2")
    page.locator("iframe[title='later']").wait_for(state="visible")
    assert pages.count("/pv.gif?tag=nested") == 1
