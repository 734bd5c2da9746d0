"""Discord's REST API under /api/v10: routing, recording, rate-limit switch, error shapes."""
