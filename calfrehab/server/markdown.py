"""Card text made safe to render: a CDS client renders a card's ``detail``
(and may render its ``summary``) as GitHub-flavoured Markdown inside the
clinician's chart. Whatever reaches a card (a rule's wording, a name from a
case file) must not become an image fetched from elsewhere, a link to a
page nobody configured, or raw HTML.

- images ``![alt](url)`` become their alt text;
- links ``[text](url)`` and autolinks ``<url>`` stay only when the URL is
  http(s) and starts with one of the configured sources (the rule base's
  ``source_url``, the app's ``app_url``); otherwise the text stays, the
  link goes;
- any other ``<`` is escaped, so no HTML tag survives, and a bare URL or
  ``www.`` name is written so that no renderer links it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto|javascript|data|file):[^>\s]*)>", re.I)
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.M)


def _allowed(url: str, sources: tuple[str, ...]) -> bool:
    return url.lower().startswith(("https://", "http://")) and any(
        url.startswith(s) for s in sources)


def safe_markdown(text: str, sources: Iterable[str | None]) -> str:
    """``text`` with images removed, links kept only to ``sources``, and
    HTML escaped."""
    allowed = tuple(s for s in sources if s and s.lower().startswith(("https://", "http://")))
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _REFERENCE.sub("", text)  # reference-style link definitions
    kept: list[str] = []

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        if _allowed(url, allowed):
            kept.append(f"[{label}]({url})")
            return f"\x00{len(kept) - 1}\x00"
        return label

    def autolink(m: re.Match[str]) -> str:
        url = m.group(1)
        if _allowed(url, allowed):
            kept.append(f"<{url}>")
            return f"\x00{len(kept) - 1}\x00"
        return url.replace(":", "&#58;", 1)  # text, not a link a renderer would make

    text = _LINK.sub(link, text)
    text = _AUTOLINK.sub(autolink, text)
    text = text.replace("\x00", "\x01").replace("<", "&lt;")
    # GitHub-flavoured Markdown links bare URLs and www. names by itself.
    text = re.sub(r"(?i)\b(https?|ftp)://", r"\1:&#47;&#47;", text)
    text = re.sub(r"(?i)\bwww\.", "www&#46;", text)
    return re.sub(r"\x01(\d+)\x01", lambda m: kept[int(m.group(1))], text)
