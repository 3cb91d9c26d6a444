"""Inference: computing facts from a case, running compiled rulesets on
durable-rules and recording every firing."""
