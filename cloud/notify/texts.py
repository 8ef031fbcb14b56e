"""The texts of the notifications, in Japanese and English.

Each builder returns ``{"ja": Message, "en": Message}``; the firm's language picks one at
delivery. Texts hold only what the recipient may see: a partner learns of an offer what
its assignment list shows (requester, part, parts, hours, machine, window), an owner of
an answer the partner, machine, parts and the partner's note.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from renkei.cloud.notify.senders import LINE_TEXT_MAX, Message

__all__ = [
    "LANGUAGES",
    "AlertLine",
    "OfferLine",
    "alert_texts",
    "answer_texts",
    "offer_texts",
    "trial_texts",
]

LANGUAGES: Final = ("ja", "en")
Texts = dict[str, Message]


def _both(subject: tuple[str, str], text: tuple[str, str]) -> Texts:
    return {
        "ja": Message(subject=subject[0], text=text[0], language="ja"),
        "en": Message(subject=subject[1], text=text[1], language="en"),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferLine:
    """One offered assignment: ``hours`` machine hours for ``parts`` parts."""

    part_id: str
    parts: int
    hours: float
    machine_id: str


def offer_texts(
    *,
    requester: str,
    request_id: str,
    offers: Sequence[OfferLine],
    window: tuple[date, date],
) -> Texts:
    """A partner is offered work: ``offers`` on its machines in ``[window)`` (end exclusive)."""
    start, end = window[0].isoformat(), window[1].isoformat()
    ja_lines = [f"・{o.part_id} {o.parts:,} 個 / {o.machine_id} {o.hours:.1f} 時間" for o in offers]
    en_lines = [
        f"- {o.part_id}: {o.parts:,} parts on {o.machine_id}, {o.hours:.1f} h" for o in offers
    ]
    return _both(
        (
            f"[Renkei] {requester} から代替生産の依頼 ({len(offers)} 件)",
            f"[Renkei] Takeover offer from {requester} ({len(offers)} assignment(s))",
        ),
        (
            "\n".join(
                [f"{requester} が代替生産を依頼しています (依頼 {request_id})。", *ja_lines]
                + [
                    f"期間: {start} 〜 {end} (終了日を含まない)",
                    "Renkei で承諾または辞退してください。",
                ]
            ),
            "\n".join(
                [f"{requester} asks you to take over production (request {request_id}).", *en_lines]
                + [
                    f"Window: {start} to {end} (end exclusive)",
                    "Please accept or decline in Renkei.",
                ]
            ),
        ),
    )


def answer_texts(
    *,
    partner: str,
    request_id: str,
    accepted: bool,
    part_id: str,
    parts: int,
    machine_id: str,
    note: str,
) -> Texts:
    """The owner learns that ``partner`` accepted or declined an assignment."""
    ja_verb, en_verb = ("承諾", "accepted") if accepted else ("辞退", "declined")
    ja = (
        f"{partner} が {part_id} {parts:,} 個 ({machine_id}) を{ja_verb}しました"
        f" (依頼 {request_id})。"
    )
    en = f"{partner} {en_verb} {parts:,} parts of {part_id} on {machine_id} (request {request_id})."
    if not accepted:
        ja += "\n残りは自動で再計画されました。"
        en += "\nThe rest was re-planned automatically."
    if note:
        ja += f"\nメモ: {note}"
        en += f"\nNote: {note}"
    return _both(
        (f"[Renkei] {partner} が{ja_verb}: {part_id}", f"[Renkei] {partner} {en_verb}: {part_id}"),
        (ja, en),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertLine:
    """One alert of a Grafana notification."""

    status: str
    name: str
    summary: str
    labels: Mapping[str, str]


_LABELS: Final = ("site", "line", "machine", "mold", "gw", "reason")


def alert_texts(*, status: str, alerts: Sequence[AlertLine], title: str = "") -> Texts:
    """A short text of a Grafana webhook notification (at most :data:`LINE_TEXT_MAX`)."""
    firing = sum(a.status == "firing" for a in alerts)
    resolved = len(alerts) - firing
    body: list[str] = []
    for a in alerts:
        where = ", ".join(f"{k}={a.labels[k]}" for k in _LABELS if a.labels.get(k))
        mark = "🔴" if a.status == "firing" else "✅"
        body.append(f"{mark} {a.name}: {a.summary}" + (f" ({where})" if where else ""))
    text = "\n".join(body) or title
    if len(text) > LINE_TEXT_MAX - 200:
        text = text[: LINE_TEXT_MAX - 201] + "…"
    head: dict[str, Any] = {"firing": firing, "resolved": resolved}
    return _both(
        (
            f"[Renkei] アラート 発生 {head['firing']} 件 / 解消 {head['resolved']} 件",
            f"[Renkei] Alerts: {head['firing']} firing, {head['resolved']} resolved",
        ),
        (text, text),
    )


def trial_texts(*, firm: str) -> Texts:
    """The test message to ``firm`` (its display name): says only that it is a test and
    that this destination works; sent by the "send a test message" button. (Named
    ``trial`` so that pytest never collects it as a test.)"""
    return _both(
        ("[Renkei] テスト通知", "[Renkei] Test notification"),
        (
            f"{firm} の Renkei 通知設定のテストです。このメッセージが届いていれば、"
            "この宛先への通知は正しく動作しています。返信は不要です。",
            f"This is a test of {firm}'s Renkei notification settings. If you can read it, "
            "notifications to this destination work. No reply is needed.",
        ),
    )
