from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "cases" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "guild_id" BIGINT NOT NULL,
    "number" INT NOT NULL,
    "action" VARCHAR(16) NOT NULL,
    "target_id" BIGINT NOT NULL,
    "moderator_id" BIGINT NOT NULL,
    "reason" VARCHAR(1024) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ,
    "state" VARCHAR(16) NOT NULL,
    "dm_delivered" BOOL,
    "idempotency_key" VARCHAR(120) UNIQUE,
    CONSTRAINT "uid_cases_guild_i_54e450" UNIQUE ("guild_id", "number")
);
CREATE INDEX IF NOT EXISTS "cases_target_idx" ON "cases" ("guild_id", "target_id", "number");
CREATE INDEX IF NOT EXISTS "cases_moderator_idx" ON "cases" ("guild_id", "moderator_id", "number");
COMMENT ON COLUMN "cases"."action" IS 'WARN: warn\nNOTE: note\nTIMEOUT: timeout\nUNTIMEOUT: untimeout\nKICK: kick\nBAN: ban\nTEMPBAN: tempban\nUNBAN: unban\nFINE: fine';
COMMENT ON COLUMN "cases"."state" IS 'ACTIVE: active\nEXPIRED: expired\nPARDONED: pardoned';
COMMENT ON TABLE "cases" IS 'A numbered moderation case; numbers run 1, 2, 3 ... per guild without gaps.';
CREATE TABLE IF NOT EXISTS "case_edits" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "editor_id" BIGINT,
    "field" VARCHAR(16) NOT NULL,
    "old_value" VARCHAR(1024) NOT NULL,
    "new_value" VARCHAR(1024) NOT NULL,
    "note" VARCHAR(1024) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "case_id" BIGINT NOT NULL REFERENCES "cases" ("id") ON DELETE RESTRICT
);
COMMENT ON TABLE "case_edits" IS 'Append-only record of a change to a case''s reason or state.';
CREATE TABLE IF NOT EXISTS "guild_settings" (
    "guild_id" BIGINT NOT NULL PRIMARY KEY,
    "currency_name" VARCHAR(32) NOT NULL,
    "daily_amount" BIGINT NOT NULL,
    "xp_min" INT NOT NULL,
    "xp_max" INT NOT NULL,
    "xp_cooldown_s" INT NOT NULL,
    "modlog_channel_id" BIGINT,
    "levelup_channel_id" BIGINT,
    "levelup_dm" BOOL NOT NULL,
    "no_xp_channel_ids" JSONB NOT NULL,
    "last_case_number" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "guild_settings" IS 'Per-guild configuration and the case-number counter.';
CREATE TABLE IF NOT EXISTS "ledger" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "guild_id" BIGINT NOT NULL,
    "user_id" BIGINT NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "amount" BIGINT NOT NULL,
    "balance_after" BIGINT NOT NULL,
    "actor_id" BIGINT,
    "counterparty_id" BIGINT,
    "reason" VARCHAR(1024),
    "idempotency_key" VARCHAR(120) NOT NULL UNIQUE,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "ledger_account_idx" ON "ledger" ("guild_id", "user_id", "id");
COMMENT ON COLUMN "ledger"."kind" IS 'GRANT: grant\nDAILY: daily\nTRANSFER_IN: transfer_in\nTRANSFER_OUT: transfer_out\nFINE: fine';
COMMENT ON TABLE "ledger" IS 'One coin movement on one account; a transfer writes two rows.';
CREATE TABLE IF NOT EXISTS "members" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "guild_id" BIGINT NOT NULL,
    "user_id" BIGINT NOT NULL,
    "display_name" VARCHAR(100) NOT NULL,
    "coins" BIGINT NOT NULL,
    "xp" BIGINT NOT NULL,
    "level" INT NOT NULL,
    "version" BIGINT NOT NULL,
    "first_seen" TIMESTAMPTZ NOT NULL,
    "last_daily_at" TIMESTAMPTZ,
    "last_xp_at" TIMESTAMPTZ,
    CONSTRAINT "uid_members_guild_i_484bdc" UNIQUE ("guild_id", "user_id")
);
COMMENT ON TABLE "members" IS 'A member''s profile in one guild: coins, XP, level and cooldowns.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);
-- Written by hand: Tortoise and aerich emit neither CHECK constraints nor these indexes.
ALTER TABLE "members" ADD CONSTRAINT "members_coins_range" CHECK ("coins" >= 0 AND "coins" <= 1000000000000000);
ALTER TABLE "members" ADD CONSTRAINT "members_xp_nonneg" CHECK ("xp" >= 0);
ALTER TABLE "ledger" ADD CONSTRAINT "ledger_amount_pos" CHECK ("amount" > 0);
ALTER TABLE "ledger" ADD CONSTRAINT "ledger_balance_nonneg" CHECK ("balance_after" >= 0);
ALTER TABLE "cases" ADD CONSTRAINT "cases_number_pos" CHECK ("number" > 0);
ALTER TABLE "guild_settings" ADD CONSTRAINT "guild_settings_xp_range" CHECK ("xp_min" >= 0 AND "xp_max" >= "xp_min");
CREATE INDEX IF NOT EXISTS "members_leaderboard_idx" ON "members" ("guild_id", "coins" DESC, "user_id");
CREATE INDEX IF NOT EXISTS "cases_expiring_idx" ON "cases" ("expires_at") WHERE "state" = 'active' AND "expires_at" IS NOT NULL;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "case_edits";
        DROP TABLE IF EXISTS "cases";
        DROP TABLE IF EXISTS "ledger";
        DROP TABLE IF EXISTS "members";
        DROP TABLE IF EXISTS "guild_settings";"""


MODELS_STATE = (
    "eJztXGtv47YS/SuEvnQLeAPHeW3Tiws4WWfr7sYOHG+7bVMItEQ7QmRSlag4xt789zukJO"
    "utyErsKK6+GPKQQ1Fn+Jg5Guq7Mmc6MZ29c+wQ5RR9Vyiei4uYvIUUbFmhVAg4npiyogY1"
    "pARPHG5jjYNwik2HgEgnjmYbFjcYFVW7iLrzCbGJjkRDNhYFSDTws1/iINulaL+FOi10gP"
    "b29pBFbDRzDVNHC4PfMpejGbacPXFDnWlwR4PONtC2S41/XKJyNiP8lthwh7/+UmRd1dBF"
    "Ba9N5e+/4dqgOnkAEKDSd2VqEFOX17H6HNvQVEIZLsmDZRPHgc5KHSEKTCCRVVeKD7KZpS"
    "XLFKkKeMs/jy2Ue2MfDWZXuHdUt+j2QtO6U2UPYqPIu6WUq4HumTHrU34h6worTlSNme6c"
    "hvWtJViDrhQMyoV0RqjoDBF34LZL5LOYpj8OgyHnGS6s4tkmoqOTKXZNMUqFtteBUKao6m"
    "A4Vq97Y1VVUiM40IgMPF+kAYYAB3TVkQDMRBfe/9TpHBycdNoHxx+ODk9Ojj60P0Bd2d90"
    "0cmj15kQLa8piVn/U38wFh1iMMW8iScEj1IHc6yG1g/Rjw6D8jaIaj1tiQD3IlMEgtAW4Q"
    "KxY8YIwffnWQr6XNxDhV1CvbN/eHL44eD4cAX2SlKEcRpP2FlED1J4nt9iuwfYSVD70AVM"
    "NZICN9ROgAtdrg+4yu/d0eAULbBNbyjU60EjjJMbOu5f9oZfx7CIGXMCG9UN/TpYyVy6kn"
    "7un38+RXeGdndDz7rQ1ARDS+Pe5ZX8x8nckpKvA/nfpfLfRX8Ad5oalCS31RzTzvGDahI6"
    "47fwd/+4wI6/dUfnv3RH7/aPf4xPmIFf0pFFcVPH9sryC1dMbZfm0JZXrqTHUN4CSc3GCJ"
    "WNYBPs5C132eCHGttb4hRlU6DHl5h257DMIgPV8pcZWRgHWQPMABAV8zTQH6FErKvZYMc1"
    "E4DrvupecPEWRz08oD6k5lLxPOcC+MVGdD3uXl7JcMNx/jElft1xT5R0pHSZkL5L7gerRt"
    "Dv/fEvSPxFfw4HPQkvc/jMlncM643/FGGPgl3OVMoWKtYjTn4gDVCLWR3CHgNaq2D1uOYL"
    "WN3vbl2M/kaMHGBSaGVwBDmp6i6ulLe4lAoX9Z6suaAq3fNx/zfw3jztG9r7dtUf9T6eIm"
    "+s6jf0qjv6CBiDyMK2zijR6+Hl6XN4ShM6bZMsN4Mxk2CaPQ+TqgkrTUB3pybf2XD4JTbv"
    "zvoJB2Lw9fKsBwaQ+EMlg+f4FYYOMQDEFFRbqndkuY6DkaFaaXokcX9dpiY+yjvtMsO808"
    "4f56LsUTJi07sIKyMEE6zdQWynq7GSyMakG9zJmAq+2sXnETFxThwb4Wt70Mwb9Dgeg/EW"
    "SAPPQ0DHOiwPzHTRvDNPSjDFM/lI4t7iTkm8crjvAMti/ltdWa4ECW5ZhOrvGbhWyCYas3"
    "XEpggj7RbTGUGciWto8wcHeR49YjaS+1EG6f28tjJI7gSd3RC7tSR2xXCrEJ7H1CrF5jXb"
    "Ml8nNJ8G4JbdOFcKdeYeq+6YL+4XMmjmHptujvOeDXFMaRdh3hADQslifbBjSg3Y5cFmeR"
    "FpDs5s60Fow+c1fF6dqJ4yfJ70wNf1hSJKzVuKtVyhVGgbt0TaDBfMJsaMfibLFOmWH8S+"
    "QRPkBbAgtvFiFURFhx48Ozwx8ciaEUyEUf987OXTZJMFm4yFP4nEj2vCOTykNxASAXG8Qq"
    "soKvaSSJxo3Scj4ytiv/fSsQDCqTFz/SQuTHUE8amMZN97WRJQw6Wc2OmQuGojz4iF65Jm"
    "0wTGiubatuQnpWANVyuluEWfS2MGdbbjeB10SrhdB51cp0sUJVh8bJhLFc/FVFpvAiQ1t7"
    "cN77fbOzALQhs8WOrcyMgVyIU+VNgi6EebxfzFEs0EOPhhTTQ9he2h2XlDaGqMmTpbUDXj"
    "3UYRqHG97WF7vOHV4cWwBb/LZDNVsP2UmFWytdLqDS1cdRU2yT0xXauyObL1G3s81x76PM"
    "MORdkFccVquQWVFp6V5M1mF1CmPkRHcMaK/+v1cJBHd2YoJ6k4Q+Pof8g0nI0t/8p/pi6V"
    "6eJoAjEaBLDOnrjffzfloheYRoAVM03gir+77H5LeunnX4ZnSXpNNHCWnBjY4aokIdY+o5"
    "Clur2N+a3syw0NnQ/17tLQrqVXtHpcs7F6XayekWe6Skgqmdy1Sb72C9FnxO5Rbi+VDLY2"
    "Wtwq4mpNWbEcRzukBAm+Cs3ZPZkTypFIKgIh1iSb+jPCgBGmzpTYaGGDo+AgvmDIZouMQ7"
    "vPbu1p1jb3XKzrkCAVBn6fOA7rQaT63WpOw9bX/29Ow9bIGJHNMZxt5bGPKDXQV4b+Dp42"
    "+1XI0+cgAt06J/kon0bdwfgUzWCj4Df0Y7f/5Y9TJN8u3NAxlF1f9EZqXxx/9bcS1aCREu"
    "9cbVAkj9HW7UBsldcrr/FiZefmzgSbYl6oeMqz4uQi/FOqjRkqmwFc0grpzlGthkatir2f"
    "JGFhmy/Xz7JKKzeWqGqJrR8JrxvqW8khrcEBuZpFb5s5IdcQpuXQf5vUWR5hWhPq7JLItx"
    "cZrJlf0ioizOayTumP3nnVf3CQZbOpYRJkeCSXpBZOJQHmtNC3qxaSbx5lqmKQ+5D5pbvn"
    "N/jk5+2C0Dv5fbuG22q4rRovlg239e+CXjccy8Trp/sm9XbwhFUpN61d4Ka1025akKi8Tg"
    "Doq+xMlsDWc3vXA9yr36D9jJyxNODFOXs7BfiLJcHcg4ec+cHOotEbUdoZRLf+dQLb4apD"
    "SAb0xbF0XLOJpeseS6dy+vwTNWuTKCnl5st29ck4yrH1g1XV0CvNxsp1s3JN2LEusQ3tVs"
    "lgx/ySVhE7hsM6T5Fj+YZ94U9T/VtoqGd6b/kEU643lx9j5/tytUofqRhgd46OSgTYUCs3"
    "wJZliffcVka0l4+wX30H0d0QfUE5yUqjyT+SElHZ/kGU19koX+zIyatuZo//B2UwGng="
)
