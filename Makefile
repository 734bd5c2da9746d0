.PHONY: run test lint bench

# Run the bot: against Discord with DISCORD_TOKEN, else the built-in sandbox console.
run:
	python3 -m pip install --quiet --disable-pip-version-check -e . && python3 -m app

# Install test dependencies, start throwaway PostgreSQL + Redis, run every test.
test:
	bash scripts/test.sh

lint:
	python3 -m ruff check .

# Benchmarks against throwaway servers; figures go to docs/benchmarks.md. NAME=transfers etc.
bench:
	bash scripts/bench.sh $(NAME)
