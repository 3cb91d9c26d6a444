"""The rule language: what a rule file may say, as pydantic models.

A rule file is YAML::

    rules:
      - id: pain-during-over-limit
        title: Pain during above the acceptable limit
        rationale: ...
        sources: [silbernagel2007]
        applies_to: {conditions: all, tracks: [straight_knee, bent_knee]}
        priority: 10
        when: {fact: track.pain_during_last, op: ">", value: 5}
        then: {decision: regress}

``when`` is a tree of ``all`` / ``any`` / ``not`` over comparisons of a named
fact with a literal (``value``) or with another fact (``to_fact``). In a rule
that applies to tracks, ``track.`` in a fact name stands for each track in
turn. ``then`` does exactly one thing: assert a derived fact, decide for the
track, refer the case, or (in the ``prescribe`` phase) adjust the next
prescription. The reference is ``docs/rule-language.md``.
"""

# No `from __future__ import annotations` in this module of pydantic models:
# pydantic evaluates a string annotation by compiling it (a typing.ForwardRef)
# each time a class is defined, about 25 us an annotation, which a cold
# `calfrehab next` paid at every run (issue 28 item 4). Annotations are plain
# expressions here; a name not yet defined is quoted.

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from calfrehab.engine.vocabulary import RuleDecision, Rung, TrackName

Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "exists", "missing"]
Literal_ = bool | int | float | str


class _Model(BaseModel):
    # Built on first validation, which also resolves the forward references
    # of the recursive conditions (All, Any_, Not): a run whose compiled rule
    # base comes from knowledge/cache.py never validates a rule file
    # (issue 28 item 4, cold start).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Compare(_Model):
    fact: str
    op: Op
    value: Literal_ | list[Literal_] | None = None
    to_fact: str | None = None

    @model_validator(mode="after")
    def _operand(self) -> "Compare":
        unary = self.op in ("exists", "missing")
        if unary and (self.value is not None or self.to_fact is not None):
            raise ValueError(f"`{self.op}` takes no value")
        if not unary and (self.value is None) == (self.to_fact is None):
            raise ValueError("give exactly one of `value` or `to_fact`")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"`{self.op}` takes a list `value`")
        if self.op not in ("in", "not_in") and isinstance(self.value, list):
            raise ValueError(f"`{self.op}` takes a single `value`, not a list")
        return self


class All(_Model):
    all: "list[Predicate]" = Field(min_length=1)


class Any_(_Model):
    any: "list[Predicate]" = Field(min_length=1)


class Not(_Model):
    not_: "Predicate" = Field(alias="not")


Predicate = Annotated[Union[Compare, All, Any_, Not], Field(union_mode="left_to_right")]  # noqa: UP007


class Prescribe(_Model):
    """Adjustments to the next prescription; cues add up, the rest replace."""

    range: Literal["floor", "off_step", "none"] | None = None
    surface: str | None = None
    tempo: str | None = None
    frequency: str | None = None
    cues: list[str] = Field(default_factory=list)


class Then(_Model):
    assert_: str | None = Field(default=None, alias="assert")
    decision: RuleDecision | None = None
    # With `decision: start`: the rung the track starts on. With `decision:
    # regress`: the rung the track steps back towards, one whole rung a
    # review (on the loaded rung too, not a load step), never below it.
    rung: Rung | None = None
    refer: bool | None = None
    prescribe: Prescribe | None = None

    @model_validator(mode="after")
    def _one(self) -> "Then":
        given = [k for k in ("assert_", "decision", "refer", "prescribe") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("`then` does exactly one of: assert, decision, refer: true, prescribe")
        if self.decision == "start" and self.rung is None:
            raise ValueError("`decision: start` needs `rung`")
        if self.rung is not None and self.decision not in ("start", "regress"):
            raise ValueError("only `decision: start` (the rung it starts on) and `decision: "
                             "regress` (the rung it steps back towards) take `rung`")
        return self


def _no_tracks() -> list[TrackName]:
    # A Python function, not the builtin `list`: pydantic asks a default
    # factory's signature whether it takes the validated data, and reads a
    # builtin's from its text with tokenize, compiling tokenize's regular
    # expressions (about 3 ms of a cold `calfrehab next`, whose import of this
    # module constructs an AppliesTo below: issue 28 item 4).
    return []


class AppliesTo(_Model):
    conditions: Literal["all"] | list[str] = "all"
    tracks: list[TrackName] = Field(default_factory=_no_tracks)


class Rule(_Model):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
    title: Annotated[str, Field(min_length=3)]
    rationale: Annotated[str, Field(min_length=10)]
    sources: list[str] = Field(min_length=1)
    # Constructed, not validated: validating it here, at import, would build
    # the validator of a model the cached rule base never validates (defer_build).
    applies_to: AppliesTo = AppliesTo.model_construct()
    priority: Annotated[int, Field(ge=0, le=1000)] = 100
    phase: Literal["decide", "prescribe"] = "decide"
    reason: str | None = None
    when: Predicate
    then: Then


class RuleFile(_Model):
    description: str | None = None
    rules: list[Rule] = Field(min_length=1)


class Source(_Model):
    citation: Annotated[str, Field(min_length=10)]
    # How a one-line reason names it ("Silbernagel 2007"); derived from the
    # citation when absent.
    short: str | None = None
    note: str | None = None


class SourcesFile(_Model):
    sources: dict[str, Source]


class Settings(_Model):
    window_sessions: Annotated[int, Field(ge=1, le=10)]
    stiffness_window_days: Annotated[int, Field(ge=1, le=60)]


class Manifest(_Model):
    name: str
    version: str
    description: str | None = None
    settings: Settings
    # Thresholds more than one rule uses, written once: a condition names
    # one with `value: {param: NAME}`, a title or reason with `{param.NAME}`.
    parameters: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], float | int] = Field(
        default_factory=dict)

    def params(self) -> dict[str, float | int]:
        """Parameters and settings, by name (what `{param: NAME}` can name)."""
        return {**self.parameters, **self.settings.model_dump()}
