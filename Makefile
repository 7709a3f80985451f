# The two commands of the README. Both set everything up on a fresh machine first.
# DISTRO: the ROS 2 distros (PyPI wheels, one virtualenv each: .venv for kilted, .venv-jazzy for
# jazzy). `make test` runs one test leg per distro, one after the other, and fails if any leg
# fails; `make test DISTRO=jazzy` runs one. setup and run use the first (kilted by default).
DISTRO ?= kilted jazzy
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
first := $(firstword $(DISTRO))
VENV ?= $(shell DONKEY_ROS_DISTRO=$(first) root=$(CURDIR) bash -c '. scripts/distro.sh && echo $$venv')

.PHONY: setup run test bench
setup:
	@DONKEY_ROS_DISTRO=$(first) scripts/setup_env.sh

run: setup
	$(VENV)/bin/donkey-ros drive --laps 3 $(ARGS)

test:
	@failed=; for d in $(DISTRO); do \
	  echo "=== test leg: ROS 2 $$d ($$(date -u +%H:%M:%S))"; start=$$(date +%s); \
	  DONKEY_ROS_DISTRO=$$d scripts/setup_env.sh --with-browser \
	    && DONKEY_ROS_DISTRO=$$d scripts/run_tests.sh $(ARGS) || failed="$$failed $$d"; \
	  echo "=== test leg: ROS 2 $$d done in $$(( $$(date +%s) - start ))s"; \
	done; \
	if [ -n "$$failed" ]; then echo "=== FAILED test legs:$$failed"; exit 1; fi
