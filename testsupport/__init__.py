"""What tests/ and bench/ share: throwaway PostgreSQL databases, private Redis and PostgreSQL
servers, waiting on conditions, and bots against a sandbox (settings for one in this process,
the environment and the lifecycle of one in a child process).

Not part of the bot: the production image leaves it out, as it leaves out the sandbox.
"""
