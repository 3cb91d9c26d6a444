"""Card text a CDS client renders as Markdown in the chart: no image, no
link but to the configured sources, no HTML (issue 27 item 5)."""

from __future__ import annotations

from calfrehab.server.markdown import safe_markdown

SOURCES = ("https://calfrehab.example/rules", None)


def test_images_become_their_alt_text() -> None:
    assert safe_markdown("a ![calf](https://evil.example/p.png) b", SOURCES) == "a calf b"


def test_links_stay_only_to_the_configured_sources() -> None:
    text = "[rule](https://calfrehab.example/rules#r1) and [elsewhere](https://evil.example/x)"
    assert safe_markdown(text, SOURCES) == \
        "[rule](https://calfrehab.example/rules#r1) and elsewhere"
    script = safe_markdown("[x](javascript:alert(1))", SOURCES)
    assert "javascript" not in script and "](" not in script
    assert "](" not in safe_markdown("[x](http://calfrehab.example.evil/rules)", SOURCES)


def test_html_and_bare_urls_are_not_live() -> None:
    out = safe_markdown("<img src=x onerror=alert(1)> see https://evil.example or "
                        "www.evil.example <javascript:alert(1)>", SOURCES)
    assert "<" not in out
    assert "https://evil" not in out and "www.evil" not in out


def test_a_reference_style_link_definition_is_dropped() -> None:
    out = safe_markdown("[click][1]\n\n[1]: https://evil.example", SOURCES)
    assert "evil" not in out


def test_plain_reasons_are_unchanged() -> None:
    text = "- Pain during two-leg heel raise no worse than 3/10 (3 or less)\n\n3 s up, 3 s down"
    assert safe_markdown(text, SOURCES) == text
