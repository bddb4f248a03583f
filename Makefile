# regaudit: lab targets (see tests/lab/README.md). Needs root.
LABCTL  := tests/lab/labctl
VARIANT ?= hardened
LAB_FLAGS ?=

.PHONY: lab-up lab-down lab-selftest

lab-up:        ## bring a lab variant up: make lab-up VARIANT=weak [LAB_FLAGS=--no-content]
	$(LABCTL) up $(VARIANT) $(LAB_FLAGS)

lab-down:      ## tear a variant down (VARIANT=all for every variant)
	$(LABCTL) down $(VARIANT)

lab-selftest:  ## self-test every variant through the pytest fixtures (brings each up and down)
	pytest -m integration tests/integration/test_lab_selftest.py
