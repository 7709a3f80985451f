# The two commands of the README. Both set everything up on a fresh machine first.
VENV ?= .venv
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup run test bench
setup:
	@scripts/setup_env.sh

run: setup
	$(VENV)/bin/donkey-ros drive --laps 3 $(ARGS)

test:
	@scripts/setup_env.sh --with-browser
	scripts/run_tests.sh $(ARGS)
