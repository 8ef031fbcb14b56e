"""Sentences of an :class:`~renkei.cloud.planner.explain.Explanation`, in English and Japanese.

Rendered from the structured records only (never from machine data directly), so a
redacted record (``offered = None``) can only say "not disclosed". Numbers: grouped
thousands, whole numbers without decimals, else one decimal (``4,950 kN``, ``12.5 h``).

- :func:`shortfall_text`: ``mold width 900 mm exceeds the horizontal tie-bar spacing
  560 mm`` / ``金型の幅 900 mm が横方向のタイバー間隔 560 mm を超えています``.
- :func:`candidate_text`: the firm, site, distance, machine (if disclosed) and its
  shortfalls.
- :func:`explanation_text`: the reason, job-level shortfalls, then the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from renkei.cloud.planner.explain import Candidate, Explanation
from renkei.cloud.planner.shortfall import Shortfall

__all__ = ["LANGUAGES", "Language", "candidate_text", "explanation_text", "shortfall_text"]

Language = Literal["en", "ja"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

_REASON: dict[str, dict[Language, str]] = {
    "no_compatible_machine": {
        "en": "No machine shared with you fits the mold",
        "ja": "金型に合う共有設備がありません",
    },
    "no_capacity": {
        "en": "Compatible machines have no spare hours left",
        "ja": "適合する設備の余力が足りません",
    },
    "not_shared": {
        "en": "Compatible machines exist, but their firms do not share them with you",
        "ja": "適合する設備はありますが、貴社に共有されていません",
    },
    "only_inside_zone": {
        "en": "The only compatible machines are stopped or inside the disrupted zone",
        "ja": "適合する設備は停止中か被災地域の中にしかありません",
    },
}

_T: dict[str, dict[Language, str]] = {
    "clamp_force": {
        "en": "needs {req} clamp force ({mold_value} kN + {margin_pct} % margin); the machine "
        "has {off}",
        "ja": "必要な型締力 {req}（{mold_value} kN + 余裕 {margin_pct}%）に対し、設備は {off}",
    },
    "tonnage": {
        "en": "needs {req} press force ({mold_value} kN + {margin_pct} % margin); the press "
        "has {off}",
        "ja": "必要な加圧能力 {req}（{mold_value} kN + 余裕 {margin_pct}%）に対し、プレスは {off}",
    },
    "tie_bar_h": {
        "en": "mold width {req} exceeds the horizontal tie-bar spacing {off}",
        "ja": "金型の幅 {req} が横方向のタイバー間隔 {off} を超えています",
    },
    "tie_bar_v": {
        "en": "mold height {req} exceeds the vertical tie-bar spacing {off}",
        "ja": "金型の高さ {req} が縦方向のタイバー間隔 {off} を超えています",
    },
    "max_mold_height": {
        "en": "mold thickness {req} exceeds the maximum mold height (daylight) {off}",
        "ja": "金型の厚さ {req} が最大型厚（デーライト）{off} を超えています",
    },
    "min_mold_height": {
        "en": "mold thickness {req} is below the minimum mold height {off}",
        "ja": "金型の厚さ {req} が最小型厚 {off} に足りません",
    },
    "max_shot_weight": {
        "en": "shot weight {req} exceeds {fraction_pct} % of the shot capacity: {off}",
        "ja": "ショット重量 {req} が射出容量の {fraction_pct}%（{off}）を超えています",
    },
    "min_shot_weight": {
        "en": "shot weight {req} is below {fraction_pct} % of the shot capacity: {off}",
        "ja": "ショット重量 {req} が射出容量の {fraction_pct}%（{off}）に足りません",
    },
    "locating_ring": {
        "en": "locating ring {req} does not match the platen bore {off}",
        "ja": "ロケートリング径 {req} が設備の {off} と合いません",
    },
    "resin": {
        "en": "resin {items} is not processed at the site",
        "ja": "樹脂 {items} をこの拠点では扱っていません",
    },
    "certifications": {
        "en": "the site lacks certification {items}",
        "ja": "この拠点には認証 {items} がありません",
    },
    "process": {
        "en": "the machine is not for {items}",
        "ja": "設備の工程が {items} ではありません",
    },
    "max_mold_weight": {
        "en": "mold weight {req} exceeds the machine's limit {off}",
        "ja": "金型の重量 {req} が設備の上限 {off} を超えています",
    },
    "bed_width": {
        "en": "die width {req} exceeds the bed width {off}",
        "ja": "金型の幅 {req} がボルスタの幅 {off} を超えています",
    },
    "bed_depth": {
        "en": "die depth {req} exceeds the bed depth {off}",
        "ja": "金型の奥行 {req} がボルスタの奥行 {off} を超えています",
    },
    "axes": {
        "en": "needs {req}; the machine has {off}",
        "ja": "必要な軸数 {req} に対し、設備は {off}",
    },
    "envelope_x": {
        "en": "work width {req} exceeds the X travel {off}",
        "ja": "加工物の幅 {req} がX軸ストローク {off} を超えています",
    },
    "envelope_y": {
        "en": "work depth {req} exceeds the Y travel {off}",
        "ja": "加工物の奥行 {req} がY軸ストローク {off} を超えています",
    },
    "envelope_z": {
        "en": "work height {req} exceeds the Z travel {off}",
        "ja": "加工物の高さ {req} がZ軸ストローク {off} を超えています",
    },
    "zone_radius": {
        "en": "the site is {off} from the disrupted site, inside the {req} zone",
        "ja": "拠点は被災拠点から {off} で、半径 {req} の被災地域の内側です",
    },
    "site_stopped": {
        "en": "the site is stopped (disrupted)",
        "ja": "拠点は停止中です（被災）",
    },
    "spare_hours": {
        "en": "needs {req} more; compatible machines shared with you have {off} left",
        "ja": "あと {req} 必要ですが、適合する共有設備の残り余力は {off} です",
    },
    "not_shared_machines": {
        "en": "{machines} compatible machines at {firms} firms do not share with you; ask "
        "them to grant sharing",
        "ja": "適合する設備が {firms} 社に {machines} 台ありますが、貴社には共有されていません。"
        "共有を依頼してください",
    },
    "no_candidate": {
        "en": "no machine of this process is shared with you outside the disrupted sites",
        "ja": "この工程の設備で、停止中の拠点以外にあり貴社に共有されているものはありません",
    },
}

_SPREAD: dict[Language, str] = {
    "en": " (spread over {sites} sites; a mold can be at one site only)",
    "ja": "（{sites} 拠点に分散。金型は1か所にしか置けません）",
}
_HIDDEN: dict[Language, str] = {"en": "(not disclosed)", "ja": "（非公開）"}
_SEP: dict[Language, str] = {"en": "; ", "ja": "、"}
_NEAREST: dict[Language, str] = {"en": "Nearest candidates: ", "ja": "近い候補："}
_STOP: dict[Language, str] = {"en": ". ", "ja": "。"}


def _num(x: float) -> str:
    """``4,950`` / ``12.5`` (grouped; decimals only when not whole)."""
    if abs(x - round(x)) < 0.05:
        return f"{round(x):,}"
    return f"{x:,.1f}"


def _with_unit(x: float | None, unit: str, lang: Language) -> str:
    if x is None:
        return _HIDDEN[lang]
    if unit == "axes":
        return f"{_num(x)} 軸" if lang == "ja" else f"{_num(x)} axes"
    return f"{_num(x)} {unit}".strip()


def shortfall_text(s: Shortfall, lang: Language) -> str:
    """One failed quantity as a phrase (module docstring); unknown quantities fall back
    to ``rule: required vs offered``."""
    template = _T.get(s.quantity, {}).get(lang)
    if template is None:
        req = _with_unit(s.required, s.unit, lang)
        return f"{s.rule}: {req} / {_with_unit(s.offered, s.unit, lang)}"
    params = {k: _num(v) for k, v in s.extras.items()}
    text = template.format(
        req=_with_unit(s.required, s.unit, lang),
        off=_with_unit(s.offered, s.unit, lang),
        items=", ".join(s.items),
        **params,
    )
    if (
        s.quantity == "spare_hours"
        and s.offered is not None
        and s.required is not None
        and s.offered >= s.required
    ):
        text += _SPREAD[lang].format(sites=params.get("sites", "?"))
    return text


def candidate_text(c: Candidate, lang: Language, *, firm_name: str | None = None) -> str:
    """``B Co. B-s1 (43 km, machine b1): needs … ; mold width …``."""
    who = f"{firm_name or c.firm_id} {c.site_id}"
    km = c.distance_km
    facts = [f"{_num(round(km) if km >= 10 else km)} km"]  # whole km from 10 km on
    if c.machine_id is not None:
        facts.append(f"設備 {c.machine_id}" if lang == "ja" else f"machine {c.machine_id}")
    if c.machine_class is not None:
        facts.append(c.machine_class)
    what = _SEP[lang].join(shortfall_text(s, lang) for s in c.shortfalls)
    if lang == "ja":
        return f"{who}（{'、'.join(facts)}）：{what}"
    return f"{who} ({', '.join(facts)}): {what}"


def explanation_text(
    e: Explanation, lang: Language, *, firm_names: Mapping[str, str] | None = None
) -> str:
    """The whole explanation as one paragraph: reason, job-level facts, candidates."""
    names = firm_names or {}
    parts = [_REASON.get(e.reason, {}).get(lang, e.reason)]
    parts += [shortfall_text(s, lang) for s in e.shortfalls]
    text = _STOP[lang].join(parts) + _STOP[lang].rstrip()
    if e.candidates:
        listed = (
            f"{i}) {candidate_text(c, lang, firm_name=names.get(c.firm_id))}"
            for i, c in enumerate(e.candidates, 1)
        )
        text += (" " if lang == "en" else "") + _NEAREST[lang] + _SEP[lang].join(listed)
    return text
