# Shortcuts for the two quick-start commands (they need only python3).
.PHONY: demo test
demo:
	python3 scripts/dev.py demo
test:
	python3 scripts/dev.py test
