.PHONY: run deps test lint lock bench

# Everything runs from the project's virtual environment .venv, made and kept in step with
# uv.lock by scripts/venv.sh (nothing is installed into the system's Python).
BIN := .venv/bin

# The bot: against Discord with DISCORD_TOKEN, else the built-in sandbox console (SQLite).
# ARGS="sandbox --help" etc. are passed to it.
run:
	@bash scripts/venv.sh run
	@$(BIN)/guildbot $(ARGS)

# Install what the tests need, and nothing else.
deps:
	@bash scripts/venv.sh dev

# ruff, mypy, the deployment checks and pytest against a throwaway PostgreSQL + Redis; every step runs,
# and a summary line names the ones that failed. PYTEST_ARGS="tests/unit -x" narrows pytest.
test:
	@bash scripts/test.sh $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/mypy

# Re-resolve uv.lock and scripts/deploy-tools.txt after editing pyproject.toml or
# scripts/deploy-tools.in.
lock:
	@bash scripts/venv.sh lock

# Benchmarks against throwaway servers; figures go to docs/benchmarks.md. NAME=transfers etc.
bench:
	@bash scripts/bench.sh $(NAME)
