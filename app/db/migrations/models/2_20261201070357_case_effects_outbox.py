from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "effects" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "guild_id" BIGINT NOT NULL,
    "target_id" BIGINT NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "until" TIMESTAMPTZ,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "case_id" BIGINT REFERENCES "cases" ("id") ON DELETE RESTRICT,
    CONSTRAINT "uid_effects_guild_i_9a73cc" UNIQUE ("guild_id", "target_id", "kind")
);
COMMENT ON COLUMN "effects"."kind" IS 'BAN: ban\nTIMEOUT: timeout';
COMMENT ON TABLE "effects" IS 'The live effect of one kind (a ban, a timeout) on one member, and the case holding it.';
        ALTER TABLE "cases" ADD "attempts" INT NOT NULL DEFAULT 0;
        ALTER TABLE "cases" ADD "action_note" VARCHAR(1024) NOT NULL DEFAULT '';
        ALTER TABLE "cases" ADD "pending" BOOL NOT NULL DEFAULT False;
        ALTER TABLE "cases" ADD "dm_state" VARCHAR(16) NOT NULL DEFAULT 'none';
        ALTER TABLE "cases" ADD "next_attempt_at" TIMESTAMPTZ;
        ALTER TABLE "cases" ADD "lift_state" VARCHAR(16) NOT NULL DEFAULT 'none';
        ALTER TABLE "cases" ADD "delete_message_s" INT NOT NULL DEFAULT 0;
        ALTER TABLE "cases" ADD "action_state" VARCHAR(16) NOT NULL DEFAULT 'none';
        ALTER TABLE "case_edits" ADD "idempotency_key" VARCHAR(120) UNIQUE;
        COMMENT ON COLUMN cases."dm_state" IS 'NONE: none\nPENDING: pending\nSENDING: sending\nDELIVERED: delivered\nUNDELIVERED: undelivered\nUNKNOWN: unknown';
COMMENT ON COLUMN cases."lift_state" IS 'NONE: none\nPENDING: pending\nAPPLIED: applied\nFAILED: failed\nSKIPPED: skipped';
COMMENT ON COLUMN cases."action_state" IS 'NONE: none\nPENDING: pending\nAPPLIED: applied\nFAILED: failed\nSKIPPED: skipped';
-- Written by hand: existing cases enter the effect model.
UPDATE "cases" SET "dm_state" = CASE "dm_delivered" WHEN TRUE THEN 'delivered'
    WHEN FALSE THEN 'undelivered' ELSE 'none' END;
ALTER TABLE "cases" DROP COLUMN "dm_delivered";
UPDATE "cases" SET "action_state" = 'applied'
    WHERE "action" IN ('timeout', 'untimeout', 'kick', 'ban', 'tempban', 'unban');
-- The newest active ban (or timeout) of each member holds the effect, unless a later case
-- ended it (an unban; an untimeout, kick or ban for a timeout).
WITH "candidates" AS (
    SELECT c."id", c."guild_id", c."target_id", c."number", c."expires_at",
           CASE WHEN c."action" = 'timeout' THEN 'timeout' ELSE 'ban' END AS "kind"
    FROM "cases" c
    WHERE c."state" = 'active' AND c."action" IN ('timeout', 'ban', 'tempban')
), "holders" AS (
    SELECT DISTINCT ON ("guild_id", "target_id", "kind") *
    FROM "candidates" h
    WHERE NOT EXISTS (
        SELECT 1 FROM "cases" e
        WHERE e."guild_id" = h."guild_id" AND e."target_id" = h."target_id"
          AND e."number" > h."number"
          AND e."action" = ANY (CASE WHEN h."kind" = 'ban' THEN ARRAY['unban']
                                ELSE ARRAY['untimeout', 'kick', 'ban', 'tempban'] END)
    )
    ORDER BY "guild_id", "target_id", "kind", "number" DESC
)
INSERT INTO "effects" ("guild_id", "target_id", "kind", "case_id", "until", "updated_at")
SELECT "guild_id", "target_id", "kind", "id", "expires_at", now() FROM "holders";
-- Active ban and timeout cases that hold nothing have ended.
INSERT INTO "case_edits" ("case_id", "editor_id", "field", "old_value", "new_value", "note", "created_at")
SELECT c."id", NULL, 'state', 'active', 'expired', 'ended (a later case superseded it)', now()
FROM "cases" c
WHERE c."state" = 'active' AND c."action" IN ('timeout', 'ban', 'tempban')
  AND NOT EXISTS (SELECT 1 FROM "effects" f WHERE f."case_id" = c."id");
UPDATE "cases" c SET "state" = 'expired'
WHERE c."state" = 'active' AND c."action" IN ('timeout', 'ban', 'tempban')
  AND NOT EXISTS (SELECT 1 FROM "effects" f WHERE f."case_id" = c."id");
DROP INDEX IF EXISTS "cases_expiring_idx";
CREATE INDEX IF NOT EXISTS "cases_outbox_idx" ON "cases" ("guild_id", "next_attempt_at") WHERE "pending";
CREATE INDEX IF NOT EXISTS "effects_due_idx" ON "effects" ("until") WHERE "case_id" IS NOT NULL AND "until" IS NOT NULL;
ALTER TABLE "cases" ADD CONSTRAINT "cases_attempts_nonneg" CHECK ("attempts" >= 0);
ALTER TABLE "cases" ADD CONSTRAINT "cases_delete_message_range" CHECK ("delete_message_s" BETWEEN 0 AND 604800);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "uid_case_edits_idempot_6ea7f9";
        DROP INDEX IF EXISTS "cases_outbox_idx";
        ALTER TABLE "cases" DROP CONSTRAINT IF EXISTS "cases_attempts_nonneg";
        ALTER TABLE "cases" DROP CONSTRAINT IF EXISTS "cases_delete_message_range";
        ALTER TABLE "cases" ADD "dm_delivered" BOOL;
        UPDATE "cases" SET "dm_delivered" = CASE "dm_state" WHEN 'delivered' THEN TRUE
            WHEN 'undelivered' THEN FALSE WHEN 'unknown' THEN FALSE END;
        CREATE INDEX IF NOT EXISTS "cases_expiring_idx" ON "cases" ("expires_at") WHERE "state" = 'active' AND "expires_at" IS NOT NULL;
        ALTER TABLE "cases" DROP COLUMN "attempts";
        ALTER TABLE "cases" DROP COLUMN "action_note";
        ALTER TABLE "cases" DROP COLUMN "pending";
        ALTER TABLE "cases" DROP COLUMN "dm_state";
        ALTER TABLE "cases" DROP COLUMN "next_attempt_at";
        ALTER TABLE "cases" DROP COLUMN "lift_state";
        ALTER TABLE "cases" DROP COLUMN "delete_message_s";
        ALTER TABLE "cases" DROP COLUMN "action_state";
        ALTER TABLE "case_edits" DROP COLUMN "idempotency_key";
        DROP TABLE IF EXISTS "effects";"""


MODELS_STATE = (
    "eJztXW1z4jgS/isqf5mkikllyLxd5uqqSEJm2SSQIszO3C5bHsUW4IoteyURQs3Nf7+WbI"
    "NfCYZAHMZfEmipZfG0Xrpb3fIPzXFNYvODU8yJdox+aBQ78kOMXkMa9rw5VRIEvrVVRQNq"
    "KAq+5YJhQwBxgG1OgGQSbjDLE5ZLZdUGomPnljBiItkQw7IAyQY+BSUcsTFFb2qoXkNH6O"
    "DgAHmEoeHYsk00scTIHQs0xB4/kA80XQOeaNHhE7fdp33aGxHFjCyO4Me4SAABaty6D4i5"
    "E+QOFOXM4obLgN9ld8gSiBJi8mP4BFyG7EHNr3aFhGqiTx0i+4IwNVWJbQ0E/ALZnmQigw"
    "ExBNrDyMPMlOwYCeJ4t5i+glJq7iOCjREa4XsCRVxgQT716XcPiqCZ77K7nAg0GVk2VKDT"
    "oKOOLAgq1dTDv1PyIHQsZOvyv2KVPTJsbDnwMJvAz+/TPZcpMsHMtggXiBHBpvtIQYIFci"
    "lBHnMNwuEnC9ldyyHIdInfmgRGCWtMrX/GRBfukACdgcj++ktT4OuWKSv4QtL+/hs+W9Qk"
    "DzCqoNIPbWAR21SfY/UFZtBUghk+kgePQWcAe8UjSeGYVkNVnzE+qGamnirTFCsMYPXlZw"
    "3lPjgYXi5b4dlR3kWPl5zena56EJuW/iMVXQ95T6xhi4pzVVdOi1vdcO2xQ+f1vSkMbzpj"
    "sKiQ1CGhsjNEPkGwMVG/xbaDiR3OYV9w8yq+bCI8JhngsS2nveT2OzCnabre7vT0m2ZP17"
    "XUkhByRGZyQDIAQ4ADusoVAEPZhdf/qtePjj7UD4/ef3z39sOHdx8PP0Jd1d900Yeffmfm"
    "aPlNKcxan1vtnuyQC2uWv5JJwk/FgwXW59Kfox8dBsvLIMr1uCRC3BeJIiTMZTFfcXdMGH"
    "Pwg3mWgj4X9znDLqFef/P2w9uPR+/fzsCeURZhnMbT36DSeJ6OMGsCdgrUFnQBU4OkwJ1z"
    "J8CFLpcHXO1ro9s+RhPMYE+Hek1oxBWwrfVaV83Ol96x2q5gX+/TL+0ZbUxn1IvW6cUxur"
    "OMuz49aUBTsBMDd/PqWn0L9mbJrb6Pqfp23mrDkwYWJUk9JUe0Dn7QbUKHYgRf37xfIMc/"
    "Gt3T3xrdvTfv9+MTph2U1FVRXNSxvXL5hSvGtktzaMsrV1JjWF4CSc5KCCsLgYE+m7fcZY"
    "M/59jeEqdpmwI9vsQc1t8us8hAtfxlRhXGQTYAMwAE7Ik00GdQItfVbLDjnAnAzYD1IPzw"
    "Ekc9/ECzQ+2p5mvOC+CXG9FNr3F1rcwNzv+xFX6NXlOW1BV1mqDuJfeDWSPoa6v3G5Jf0Z"
    "+ddlPB63IxZOqJ83q9P6XZo+GxcHXqTnRsRpT8kBqiFpM6mD0WtLaC1OOcTyD1oLtlEfoL"
    "EXKIyUIpK2fDqurijHmLS6lUUe9JwQVVa5z2Wn+A9uZz92nz23Wr2zw7Rv5YNfv0utE9A4"
    "yB5DtpiFkOLc8yQRsF7ZYaU/2OTItsdRmsKwkqOf2e12cQx7t+uAzg9cN8xGVZHHLT0dea"
    "FlH+Lc4M6tLC86LdaSvricKcuG62z1rtz8ehS7FPb0IKDylnzUuYR2rmmMSGqaTmzpd2hD"
    "6msZKLduersqHuYAmi5ZhTvpm7npCTbbxoQTeury9bUnjY82xLCu680bqUhAG2bPn95qJ1"
    "fS0J/M7yvLIsjoEQpPVfZGFMsFWGwJKGgDzXWG/WxFuo5swzzBlYnYkgukM4x0Oi8wK+1y"
    "zW7TkvDjc1d57YBRuMkAyfkOvaBNNsbCNcCUhvgW1TmM4o2zWTTjqdy5iFdNJKuHraX65O"
    "mjCy1cCGSpbI8QAFh51FhnGUpRq+qROZ+BFyUeM/g73yAJTNAyBPogd3kdNQSbjFxt0EbF"
    "89VhJxCJlW1jQ7CdjOL7rExjnnR5HAkyY08wI9fT/DgR5Sg1GpsHTrbh6Y6SKn7iQpmMJ+"
    "agbPlk9K4pUTxBNiuTiQR59JboloHk9uRK9dak8RIyoMxh0gjIwRpkMiA16wCqF5xZHvSU"
    "cu8yNWMqJ31msrI7gkEUZSBVSUMqBCDrcVjsVibCvtyyXbJZ7nSGwQgrusNTxjKPOZ/6qW"
    "8JObTy40c4/tcSGHQ4xpF2HekMOBkklxsGNMFdjLg13Qi1a5z6pz9Ooc/dET1uoAb+sHeM"
    "roKap+RpiqgKxC2mfKmxCXRFoM5y4j1pBekGnqtCDfb/ACRZDnMwAyw5OZ3RodevDbfS+7"
    "pHdh7em2Tnt+6kC2f2aT7oemSlzRMpwPQUltkevBT3tZ0u/QU2kz9yRMlnEHKgnlDiQnE2"
    "dusZ8140fw7iPpK4BiP++mNku8Uck9I9C2ZfaNJdIuic08RuYWdaCezCGapR/VUCQrSD6g"
    "JtNrsEAO7C+q2XkfsN8Di/udk234zDINSD5NJfK0JdNkRKg6kwLKwSxVCUodbCqfioOFMZ"
    "Ld5KpDHO3Ns5z2l8vaiYUIy56lEngqz0spPS9VKsszOl6qePxnhV+tU5nK9eNhCSFvmb0F"
    "WiRTJZHnktzmnsczJhNs7KKW7YypOiQs2yFhTLaeuaLrIs5ZuS5KLPag989sR5dsFv+CZn"
    "TJJPDSrejPUr2+IUJeCeGPg4QxHa9QW2RT+6o6j9Z91LS+Juy1fyEGQDiwhuPgGo2oNfva"
    "T6uGGrAhE5Y2nFdtZI1D/LIYM5VdqRljxpQXWhEyleyczSDJuMXDIsO1KN/OidFRfQll+q"
    "ieq0zLokSULrbsqY4dOZWKTYAk5/ZMyjeHG45x3LJF+eDpjpWRXJwL/Zxhi6C/2yzmTxZX"
    "KsHBDwXR9Bm2h2b9BaFpuK5tuhNaKIQ/xbc9bN+/lAho0Ltsd6jLMEVK7FWud0izV6bQqq"
    "uwTe6JPfZWFkc2fyWPdeVhOhlyWJThEmesklwKJLlQV3+IjuCMFf/3m047L04rgznpiLMM"
    "gf6HbItvbPnX/j0YU5V4iW7BRgMDlh/I5/1nUyr6AtFIsGKiCVXxvavGt6SWfnrZOUk612"
    "QDJ8mJgbnQlROi8KVmWaxVZlJyFlTxc/lQv0wn9DLxc9XRw65JPe/ooUBW2ib9tZfEHBLW"
    "pIJNtQxvbbS4tshXa6uKy/loZfSQ9Fchx70nDqEiDD3ChvKmfpJRSQxTPiAMTRgoChyJia"
    "sCfNLO2rVbe9xrm3uR7piTMIcH/kquBffn+hDpQbeq63PLq/9XMUclEkZkc5zPtuWxjzBV"
    "0FfxRnnxRp+7jXbvGA1hoxB9etZoXf73GKnThT7tQdnNebOrt+R9ucFWols0UuIHKIVF6t"
    "7dst2gu8rxynMcrOzc3LnFtpwXOh6ILDt5Ef4p1koMK4sBVNIV8rSjXJUbdVXsgyAJDzMx"
    "LR5jlWauJLGqJLZ+h3TZUN9K8msJ0iBLZr1tIQ+ycpjumOssz2FaEtfZlUpa0zK8ZkFJbZ"
    "HDzE95W/q1Y371V1y+qWog34xl+U4u5Vo4Vg4wXkPfrmtInTyqUMUw9iHzXWPrN/hoZl1o"
    "elf5dCVSBSrfVomEUfm2SgC9aXHPxsXDfZN8O3g1zFJq2uECNe0wraaFgcpFDMCAZWeiBL"
    "Ye21sMcL9+hfYaMWNpwBfH7O0U4E8WBHMPGnLmG/4Wjd4I084guvVrFRkXOickA/rFtnSc"
    "s7Kly25Lp2L6goyawk6UFHOV416eiKMcWT94qwp6xllJuWxSLol3rBcchnfJYMyxrWW4yZ"
    "JVaov8ZcyvtLTDbBbypRiJiQYuQxNM1RVUgXfrjnhCvcKJqVfXMwIDkAsgT7M8Zmu2KO/N"
    "agBF2ozBO+0RB0BmlfbUKS/CqNu8+XLVrMkLwgfMdYBijj3bMuQUQtyPLttHzhh4hvIGLW"
    "ipT1VT0MEJNAEKJUWW/4jgCBmNMEdD5k4o4hZ8P4b+yeAEU77k3uLqNi/p4vN/G0d4CBNi"
    "/ZvJq2OQ7RyDVF69UurRweQrhn2EqYJ+ZegpISYpOOrnPBXwq8d6VOewv4jtWBJNs0GYZY"
    "yyFMygZKFeied1HtMq8+X8xG9v+VUOPNf0E+YrPbl+w3yFM99rWKpA5RVVzfq7d0uomlAr"
    "V9VUZYmISi/jXGHBi0i9rGOFXUB3QwdlFMyfjE00P/k5wrL9lOfncck8WXLzs25mP/8P36"
    "rftA=="
)
